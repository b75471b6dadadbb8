"""The GPU measurement harness, exercised on a CPU with a tiny model.

What matters most is the file other code reads (header keys, columns, every operator family,
sane numbers) and the shapes (tensor parallelism shards the weights). Timings on a shared CPU
are noisy, so the only timing claim checked is the coarse one: a layer on 256 tokens takes
longer than on 1.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the harness needs torch: pip install '.[harness]'")

from builders import REPO  # noqa: E402

from calibration.harness import attention, csvio, grid, layers, timing  # noqa: E402
from calibration.harness.cli import main  # noqa: E402
from calibration.harness.shapes import shard, tiny_model  # noqa: E402
from sim.hardware import catalog  # noqa: E402

TINY_TPS = (1, 2)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """One in-process tiny run for tp 1 and 2, single-threaded so a busy CI box cannot stall
    OpenMP barriers into the numbers."""
    out = tmp_path_factory.mktemp("measurements")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        argv = ["--tiny", "--device", "cpu", "--repeats", "7", "--warmup", "1", "--out", str(out)]
        for tp in TINY_TPS:
            argv += ["--tp", str(tp)]
        assert main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    return {tp: out / f"cpu-tiny-tp{tp}.csv" for tp in TINY_TPS}


def test_one_file_per_tp_with_the_provenance_header(tiny_run: dict[int, Path]) -> None:
    for tp, path in tiny_run.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        assert lines[0] == "# tokenfactory-measurements v1"
        keys = [line[2:].split(":", 1)[0] for line in lines[1:1 + len(csvio.HEADER_KEYS)]]
        assert keys == list(csvio.HEADER_KEYS)
        assert lines[1 + len(csvio.HEADER_KEYS)] == ",".join(csvio.COLUMNS)
        header, _ = csvio.read(path)
        assert header["gpu"] == "cpu" and header["device"] == "cpu"
        assert header["model"] == "tiny" and header["tensor_parallel"] == str(tp)
        assert header["dtype"] == "fp32" and header["torch"] == torch.__version__
        assert header["source"] == "tokenfactory harness"
        assert header["date"].endswith("+00:00")


def test_every_operator_at_every_grid_point_with_sane_numbers(tiny_run: dict[int, Path]) -> None:
    for path in tiny_run.values():
        _, rows = csvio.read(path)
        assert {r["op"] for r in rows} == set(grid.OP_FAMILIES)
        assert len(rows) == len(grid.points(grid.TINY))
        for r in rows:
            median, p10, p90 = float(r["seconds"]), float(r["p10_s"]), float(r["p90_s"])
            assert math.isfinite(median) and median > 0, r
            assert 0 < p10 <= median <= p90, r
            assert r["repeats"] == "7"
        for op in grid.LINEAR_OPS:
            assert [int(r["tokens"]) for r in rows if r["op"] == op] == list(
                grid.TINY.linear_tokens)
            assert all(r["batch"] == r["context_tokens"] == "" for r in rows if r["op"] == op)


def test_attention_rows_carry_their_sizes(tiny_run: dict[int, Path]) -> None:
    _, rows = csvio.read(tiny_run[1])
    prefill = {(int(r["tokens"]), int(r["context_tokens"])) for r in rows
               if r["op"] == "attn_prefill"}
    assert prefill == {(t, c) for t in grid.TINY.prefill_tokens
                       for c in grid.TINY.prefill_context_tokens}
    decode = [r for r in rows if r["op"] == "attn_decode"]
    assert {(int(r["batch"]), int(r["context_tokens"])) for r in decode} == {
        (b, b * c) for b in grid.TINY.decode_batch for c in grid.TINY.decode_context_per_seq}
    assert all(r["tokens"] == "" for r in decode)  # total KV tokens, not per sequence


def test_a_layer_on_many_tokens_takes_longer_than_on_one(tiny_run: dict[int, Path]) -> None:
    _, rows = csvio.read(tiny_run[1])
    layer = {int(r["tokens"]): float(r["seconds"]) for r in rows if r["op"] == "layer_linear"}
    assert layer[max(layer)] > layer[1]


def test_tensor_parallel_shards_every_weight() -> None:
    m = catalog.models()["llama-3.1-70b"]
    for tp in (1, 2, 4, 8):
        s = shard(m, tp)
        assert s.qkv_out == (64 + 2 * 8) * 128 // tp
        assert s.attn_out == 64 * 128 // tp
        assert 2 * s.ffn_per_gpu == 2 * 28672 // tp
        assert s.vocab_per_gpu == 128256 // tp
        assert s.kv_heads == 8 // tp
    # More GPUs than KV heads: each keeps one (replicated), as vLLM does.
    assert shard(m, 16).kv_heads == 1 and shard(m, 16).q_heads == 4
    s = shard(tiny_model(), 2)
    w = layers.random_weights(s, torch.device("cpu"), torch.float32, torch.Generator())
    assert tuple(w.qkv.shape) == ((4 + 2 * 2) * 64 // 2, 256)
    assert tuple(w.o.shape) == (256, 4 * 64 // 2)
    assert tuple(w.gate_up.shape) == (512, 256) and tuple(w.down.shape) == (256, 256)
    assert tuple(w.lm_head.shape) == (500, 256)


def test_layer_ops_produce_the_layer_shapes() -> None:
    s = shard(tiny_model(), 2)
    g = torch.Generator().manual_seed(0)
    w = layers.random_weights(s, torch.device("cpu"), torch.float32, g)
    ops = layers.LayerOps(s, w, 8, g).ops()
    assert set(ops) == set(grid.LINEAR_OPS)
    assert tuple(ops["layer_linear"]().shape) == (8, 256)
    assert tuple(ops["qkv_proj"]().shape) == (8, s.qkv_out)
    assert tuple(ops["gate_up_proj"]().shape) == (8, 2 * s.ffn_per_gpu)
    assert tuple(ops["act"]().shape) == (8, s.ffn_per_gpu)
    assert tuple(ops["rope"]().shape) == (8, s.q_heads, s.head_dim)
    assert tuple(ops["lm_head"]().shape) == (8, s.vocab_per_gpu)
    assert torch.isfinite(ops["layer_linear"]()).all()


def test_rotary_embedding_is_a_rotation() -> None:
    x = torch.randn(5, 3, 8, dtype=torch.float64)
    cos, sin = layers.rope_tables(5, 8, torch.device("cpu"), torch.float64)
    y = layers.rotate(x, cos, sin)
    pairs = lambda t: t[..., :4] ** 2 + t[..., 4:] ** 2  # noqa: E731 - rotate-half pairs i, i+4
    torch.testing.assert_close(pairs(y), pairs(x))
    torch.testing.assert_close(y[0], x[0])  # position 0 is not rotated


def _reference_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                         mask: torch.Tensor | None) -> torch.Tensor:
    group = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(-1) @ v


@pytest.mark.parametrize("context", [0, 5])
@pytest.mark.parametrize("use_bias", [True, False])
def test_prefill_attention_is_causal_from_the_bottom_right(context: int, use_bias: bool) -> None:
    """Query i of a chunk sees the whole cached context and the chunk up to itself."""
    s = shard(tiny_model(), 1)  # 4 query heads over 2 KV heads: GQA
    tokens = 6
    g = torch.Generator().manual_seed(1)
    op = attention.prefill_op(s, tokens, context, torch.device("cpu"), torch.float64, g,
                              use_bias=use_bias)
    g = torch.Generator().manual_seed(1)  # the same inputs again, for the reference
    q = torch.randn(1, s.q_heads, tokens, s.head_dim, generator=g, dtype=torch.float64)
    k = torch.randn(1, s.kv_heads, context + tokens, s.head_dim, generator=g, dtype=torch.float64)
    v = torch.randn(1, s.kv_heads, context + tokens, s.head_dim, generator=g, dtype=torch.float64)
    mask = attention.causal_mask(tokens, context, torch.device("cpu"))
    assert mask[0].sum() == context + 1 and mask[-1].all()
    torch.testing.assert_close(op(), _reference_attention(q, k, v, mask))


def test_decode_attention_packs_query_heads_per_kv_head() -> None:
    s = shard(tiny_model(), 1)
    g = torch.Generator().manual_seed(2)
    op = attention.decode_op(s, 3, 7, torch.device("cpu"), torch.float64, g)
    g = torch.Generator().manual_seed(2)
    group = s.q_heads // s.kv_heads
    q = torch.randn(3, s.kv_heads, group, s.head_dim, generator=g, dtype=torch.float64)
    k = torch.randn(3, s.kv_heads, 7, s.head_dim, generator=g, dtype=torch.float64)
    v = torch.randn(3, s.kv_heads, 7, s.head_dim, generator=g, dtype=torch.float64)
    # As ordinary GQA: query head h uses KV head h // group, one query row per sequence.
    reference = _reference_attention(q.reshape(3, s.q_heads, 1, s.head_dim), k, v, None)
    torch.testing.assert_close(op().reshape(3, s.q_heads, 1, s.head_dim), reference)


def test_time_budget_trims_repeats_but_keeps_a_minimum() -> None:
    timer = timing.CpuTimer()
    fn = lambda: sum(range(2000))  # noqa: E731
    assert timing.measure(fn, timer, warmup=1, repeats=20).repeats == 20
    assert timing.measure(fn, timer, warmup=1, repeats=20, budget_s=0.0).repeats == \
        timing.MIN_REPEATS
    t = timing.summarise([3.0, 1.0, 2.0, 10.0, 4.0])
    assert t.p10_s <= t.median_s == 3.0 <= t.p90_s


def test_grid_sizes_caps_and_kv_budget() -> None:
    full = grid.points(grid.FULL)
    assert len(full) == 14 * len(grid.LINEAR_OPS) + 4 * 3 + 5 * 3
    assert max(p.tokens or 0 for p in grid.points(grid.FULL, max_tokens=1000)) == 512
    kv_per_token = shard(catalog.models()["llama-3.1-8b"], 1).kv_bytes_per_token(2)  # 4 KiB
    kept = grid.points(grid.FULL, kv_bytes_per_token=kv_per_token, kv_budget_bytes=4 * 2**30)
    decode = {(p.batch, p.context_per_seq) for p in kept if p.op == "attn_decode"}
    assert (256, 8192) not in decode and (128, 8192) in decode  # 8 GiB out, 4 GiB in


def test_the_standard_gpu_job_is_estimated_well_within_eight_minutes(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--all", "--estimate", "h100-sxm"]) == 0
    total = capsys.readouterr().out.strip().splitlines()[-1]
    seconds = float(total.split("about ")[1].split(" s")[0])
    assert 0 < seconds < 8 * 60 / 2  # half the limit: the estimate is a guess


def test_runs_as_a_module_in_a_subprocess(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "calibration.harness", "--tiny", "--device", "cpu", "--tp", "2",
         "--max-tokens", "64", "--repeats", "3", "--warmup", "0", "--out", str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "elapsed" in done.stdout
    _, rows = csvio.read(tmp_path / "cpu-tiny-tp2.csv")
    assert {r["op"] for r in rows} == set(grid.OP_FAMILIES)
    assert max(int(r["tokens"]) for r in rows if r["tokens"]) == 64


BAD_ARGS = [
    [],
    ["--model", "no-such-model"],
    ["--model", "mixtral-8x7b"],
    ["--model", "llama-3.1-8b", "--tiny"],
    ["--tiny", "--tp", "0"],
    ["--tiny", "--tp", "3"],
    ["--model", "llama-3.1-70b", "--tp", "3"],
    ["--all", "--tp", "2"],
    ["--tiny", "--repeats", "many"],
    ["--tiny", "--device", "tpu"],
    ["--tiny", "--dtype", "int4"],
    ["--tiny", "--time-budget-s", "-1"],
    ["--all", "--estimate", "no-such-gpu"],
]


@pytest.mark.parametrize("argv", BAD_ARGS, ids=lambda a: " ".join(a) or "no-args")
def test_bad_arguments_exit_2_with_one_line(argv: list[str], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    try:
        status = main([*argv, "--out", str(out)])
    except SystemExit as exc:  # argparse's own errors
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "error" in err, err
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="asks for a GPU this machine has")
def test_asking_for_a_missing_gpu_exits_2(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--tiny", "--device", "cuda", "--out", str(tmp_path / "out")]) == 2
    assert "--device" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_sim_never_imports_torch() -> None:
    code = ("import sys, sim, sim.cli, sim.steptime.simple, sim.hardware.catalog\n"
            "import calibration.harness.cli\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert done.returncode == 0, done.stderr
