"""Calibration: fitting profiles from measurements, the shipped profiles, and their use (their
rebuild from the published timings is in tests/validation/test_profile_rebuild.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from builders import scenario

import sim
from sim.calibrate.measurements import Measurements, format_measurements, parse_measurements
from sim.cli import main
from sim.runner.build import step_model
from sim.steptime import library

VIDUR_70B_TP4 = "h100-sxm_llama-3.1-70b_tp4_bf16"  # a shipped profile fitted on Vidur timings

# A synthetic GPU: per-layer linear time, decode attention a + s·B + c·KV, prefill a + p·pairs.
TRUE_DECODE = (2e-6, 3e-8, 4e-10)
TRUE_PREFILL = (5e-6, 2e-12)
TOKENS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192]


def _linear_s(tokens: float) -> float:
    return 1e-4 + max(0.0, (tokens - 128) * 1e-7)


def synthetic(noise: float = 0.02, seed: int = 0, gpu: str = "h100-sxm",
              model: str = "llama-3.1-8b") -> Measurements:
    rng = np.random.default_rng(seed)
    rows = []
    for t in TOKENS:
        rows.append(("layer_linear", t, np.nan, np.nan, _linear_s(t)))
    for batch in (1, 8, 32, 128, 256):
        for per_seq in (512, 2048, 8192):
            kv = batch * per_seq
            a, s, c = TRUE_DECODE
            rows.append(("attn_decode", np.nan, batch, kv, a + s * batch + c * kv))
    for tokens in (128, 512, 2048, 8192):
        for context in (0, 2048, 8192):
            pairs = tokens * (context + (tokens + 1) / 2)
            a, p = TRUE_PREFILL
            rows.append(("attn_prefill", tokens, np.nan, context, a + p * pairs))
    op, tokens, batch, context, seconds = (np.array(c) for c in zip(*rows, strict=True))
    seconds = seconds.astype(float) * np.exp(rng.normal(0, noise, seconds.size))
    header = {"gpu": "synthetic", "gpu_key": gpu, "date": "2026-11-27", "model": model,
              "tensor_parallel": "1", "dtype": "bf16", "device": "cuda",
              "source": "synthetic test data"}
    return Measurements(header, op, tokens.astype(float), batch.astype(float),
                        context.astype(float), seconds)


def _fit(tmp_path: Path, m: Measurements, *extra: str) -> tuple[int, Path]:
    csv = tmp_path / "m.csv"
    csv.write_text(format_measurements(m))
    out = tmp_path / "profile.yaml"
    return main(["calibrate", "fit", str(csv), "-o", str(out), *extra]), out


def test_fit_recovers_known_coefficients_from_noisy_measurements(tmp_path: Path) -> None:
    code, out = _fit(tmp_path, synthetic(noise=0.02))
    assert code == 0
    profile = library.load_profile(out)
    step = profile.step
    assert step.decode_attention_s_per_kv_token == pytest.approx(TRUE_DECODE[2], rel=0.05)
    assert step.decode_attention_s_per_seq == pytest.approx(TRUE_DECODE[1], rel=0.15)
    assert step.prefill_attention_s_per_pair == pytest.approx(TRUE_PREFILL[1], rel=0.05)
    for t in (4, 300, 5000):
        assert step.layer_linear_s.at(t) == pytest.approx(_linear_s(t), rel=0.08)
    assert profile.source == "measured"
    components = profile.provenance["components"]
    assert components["attn_decode"] == "measured" and components["layer_linear"] == "measured"
    assert components["lm_head"].startswith("roofline")  # not measured: says so
    # Errors are reported per operator and for whole steps, and are about the noise level.
    for op in ("layer_linear", "attn_decode", "attn_prefill", "step"):
        assert 0 < profile.fit_error[op]["mape_pct"] < 8


def test_fit_without_noise_is_exact(tmp_path: Path) -> None:
    code, out = _fit(tmp_path, synthetic(noise=0.0))
    assert code == 0
    errors = library.load_profile(out).fit_error
    assert errors["attn_decode"]["worst_pct"] < 1e-6
    assert errors["attn_prefill"]["worst_pct"] < 1e-6


def test_fitted_profile_drives_a_run_through_a_file_path(tmp_path: Path) -> None:
    _, out = _fit(tmp_path, synthetic())
    d = sim.run(scenario(duration_s=20.0, profile=str(out))).to_dict()
    assert d["profile"]["source"] == "measured" and d["profile"]["name"] == "profile"
    assert d["requests"]["completed"] == d["requests"]["arrived"]


def test_table_profile_keeps_exact_mode_equal_to_event_skipping(tmp_path: Path) -> None:
    # A measured (Vidur) profile by name: `auto` now composes from operator tables instead.
    data = scenario(duration_s=60.0, model="llama-3.1-70b", profile=VIDUR_70B_TP4,
                    deployment={"tensor_parallel": 4, "replicas": 2,
                                "scheduler": {"policy": "chunked-prefill", "max_num_seqs": 64,
                                              "max_batched_tokens": 2048}},
                    workload={"arrival": {"process": "gamma", "rate_per_s": 3.0, "cv": 2.0},
                              "prompt_tokens": {"dist": "lognormal", "mean": 1500, "sigma": 1},
                              "output_tokens": {"dist": "uniform", "low": 1, "high": 300}})
    fast, exact = sim.run(data), sim.run(data, exact=True)
    assert fast.to_dict()["profile"]["source"] == "measured"
    assert np.allclose(fast.engine.finish_s, exact.engine.finish_s, rtol=1e-9, atol=1e-9)
    assert fast.engine.events < exact.engine.events


def test_profile_evaluation_is_monotone() -> None:
    m = step_model(sim.load_scenario(scenario(model="llama-3.1-70b",
                                           deployment={"tensor_parallel": 2})))
    totals = [sum(m.step_s(t, t * (t + 1) / 2, 0, 0)) for t in (16, 256, 2048, 8000)]
    assert totals == sorted(totals)
    decode = [m.decode_fixed_s(b) for b in (1, 16, 64, 256)]
    assert decode == sorted(decode)
    assert sum(m.step_s(0, 0, 8, 10_000)) < sum(m.step_s(0, 0, 8, 100_000))


@pytest.mark.parametrize("name", sorted(library.library()))
def test_shipped_profiles_fit_their_measurements(name: str) -> None:
    profile = library.library()[name]
    errors = profile.fit_error
    assert errors["layer_linear"]["median_pct"] <= 5.0  # the bar: median ≤ 5%
    assert errors["step"]["median_pct"] <= 5.0
    assert profile.provenance["components"]["layer_linear"] == "measured"
    assert profile.provenance["source"].startswith("Vidur")


def _csv_text(m: Measurements) -> str:
    return format_measurements(m)


BAD_FILES = [
    ("empty", lambda text: "", "empty file"),
    ("wrong-magic", lambda text: text.replace("v1", "v9", 1), ":1"),
    ("missing-columns", lambda text: text.replace("op,tokens,batch", "op,tokens", 1), "columns"),
    ("bad-number", lambda text: text.replace("\nlayer_linear,1,", "\nlayer_linear,one,", 1),
     "column tokens"),
    ("unknown-op", lambda text: text.replace("\nlayer_linear,1,", "\nmatmul,1,", 1), "column op"),
    ("no-rows", lambda text: text[: text.index("op,tokens")] + "op,tokens,batch,context_tokens,"
     "seconds,p10_s,p90_s,repeats\n", "no measurement rows"),
    ("no-model", lambda text: text.replace("# model: llama-3.1-8b\n", ""), "model"),
]


@pytest.mark.parametrize(("case", "mutate", "named"), BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_measurement_files_exit_2(case, mutate, named, tmp_path: Path, capsys) -> None:
    csv = tmp_path / "m.csv"
    csv.write_text(mutate(_csv_text(synthetic())))
    out = tmp_path / "p.yaml"
    assert main(["calibrate", "fit", str(csv), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(csv) in err and named in err
    assert not out.exists()


def test_non_monotone_garbage_is_refused(tmp_path: Path, capsys) -> None:
    m = synthetic(noise=0.0)
    rows = m.select("layer_linear")
    seconds = m.seconds.copy()
    seconds[np.flatnonzero(rows)[-3]] /= 10  # one wild point at 2048 tokens
    m.seconds = seconds
    code, out = _fit(tmp_path, m)
    assert code == 2 and not out.exists()
    assert "2048 tokens" in capsys.readouterr().err


def test_mixed_hardware_is_refused(tmp_path: Path, capsys) -> None:
    a, b = synthetic(), synthetic(seed=1)
    b.header = {**b.header, "gpu": "another gpu"}
    (tmp_path / "a.csv").write_text(format_measurements(a))
    (tmp_path / "b.csv").write_text(format_measurements(b))
    code = main(["calibrate", "fit", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"),
                 "-o", str(tmp_path / "p.yaml")])
    assert code == 2
    assert "header gpu" in capsys.readouterr().err


def test_measurements_round_trip() -> None:
    m = synthetic()
    again = parse_measurements(format_measurements(m), "x")
    assert again.header == m.header
    assert np.array_equal(again.op, m.op)
    assert np.allclose(again.seconds, m.seconds, rtol=1e-8)


def test_calibrate_measure_runs_the_harness_then_fit_checks_the_model(tmp_path: Path,
                                                                      capsys) -> None:
    pytest.importorskip("torch", reason="PyTorch is needed to run the measurement harness")
    out = tmp_path / "m"
    out.mkdir()
    assert main(["calibrate", "measure", "--tiny", "--device", "cpu", "--tp", "1",
                 "--out", str(out)]) == 0
    [csv] = out.glob("*.csv")
    capsys.readouterr()
    # The tiny harness model is not a catalogue model, so no profile can be built from it.
    assert main(["calibrate", "fit", str(csv), "--gpu", "h100-sxm",
                 "-o", str(tmp_path / "p.yaml")]) == 2
    assert "header model" in capsys.readouterr().err
