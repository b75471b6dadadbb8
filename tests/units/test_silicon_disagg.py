"""Disaggregated measured rows (`mode: disagg` in the CSV format of silicon_sample.csv) as a
prefill pool and a decode pool.

Made-up rows of the shared header: each pool's columns become its block of
`deployment.disaggregation` (replicas = `*_num_workers`, batch limit = one rank's
`*_batch_size` × the pool's attention-DP ranks, the KV link of the row's system); what the
simulator lacks is skipped with the reason; the summaries keep the two serving modes apart.
Closed loops on a constant step check the run end to end against arithmetic: the client's
TTFT ends when the decode side admits the request (prefill step + KV transfer + the decode
queue), TPOT is the decode steps alone, and the measured means are those of the benchmark's
profiling phase, whose first wave queues for the prefill pool.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from builders import SILICON_DENSE, silicon_csv_text, write_silicon_fixture

import sim
from sim.scenario.disaggregation import pool_kv_capacity
from sim.validation import silicon_phase
from sim.validation.files import read_table
from sim.validation.silicon import SiliconComparison, compare_silicon, simulate_plan
from sim.validation.silicon_mapping import (
    KV_LINK_LATENCY_S,
    ModelFinder,
    Skip,
    kv_link_gb_s,
    labels,
    plan_row,
)
from sim.validation.silicon_phase import BENCHMARK_ROUNDS, run_profiling_phase
from sim.validation.silicon_rows import PoolColumns, SiliconTable
from sim.validation.silicon_summary import (
    DISAGGREGATED,
    figures_line,
    mode_summary,
    silicon_groups,
    skip_reasons,
    worst,
)

ASSUMED_POOLS = "1P?D (assumed)"  # the pools label of a row stating neither worker count
NO_OWN_LAYOUT = {"batch_size": "", "tp_size": "", "pp_size": "", "attention_dp_size": "",
                 "moe_tp_size": "", "moe_ep_size": ""}
# 2 prefill workers of TP2, 3 decode workers of TP1 holding 4 sequences each: 12 clients.
DISAGG = {
    **SILICON_DENSE, **NO_OWN_LAYOUT, "id": "dense-2p3d", "mode": "disagg",
    "silicon_data_source": "config_id=9; silicon_concurrency=12",
    "prefill_batch_size": "1", "prefill_num_workers": "2", "prefill_tp_size": "2",
    "prefill_pp_size": "1", "prefill_attention_dp_size": "1", "prefill_moe_tp_size": "1",
    "prefill_moe_ep_size": "1", "decode_batch_size": "4", "decode_num_workers": "3",
    "decode_tp_size": "1", "decode_pp_size": "1", "decode_attention_dp_size": "1",
    "decode_moe_tp_size": "1", "decode_moe_ep_size": "1"}
UNSTATED = {"prefill_num_workers": "", "decode_num_workers": "", "prefill_batch_size": "",
            "decode_batch_size": ""}
# Mixtral (8 experts, in the catalogue) on GB200: a DP4 × EP4 prefill worker, two DP8 × EP8
# decode workers of 8 ranks × 16 sequences.
MOE = {
    **DISAGG, "id": "mixtral-1p2d", "model_path": "mistralai/Mixtral-8x7B", "system": "gb200",
    "backend": "trtllm", "silicon_data_source": "silicon_concurrency=256",
    "prefill_num_workers": "1", "prefill_tp_size": "1", "prefill_attention_dp_size": "4",
    "prefill_moe_ep_size": "4", "decode_num_workers": "2", "decode_batch_size": "16",
    "decode_tp_size": "1", "decode_attention_dp_size": "8", "decode_moe_ep_size": "8"}


def rows_of(tmp_path: Path, rows: list[dict[str, str]]) -> tuple[SiliconTable, Path]:
    path, models = write_silicon_fixture(tmp_path, rows)
    table = read_table(path)
    assert isinstance(table, SiliconTable)
    return table, models


def plan_of(tmp_path: Path, row: dict[str, str]) -> Any:
    table, models = rows_of(tmp_path, [row])
    return plan_row(table.rows[0], ModelFinder(models))


# ---- reading ---------------------------------------------------------------------------------


def test_each_pools_columns_are_read(tmp_path: Path) -> None:
    table, _ = rows_of(tmp_path, [DISAGG, SILICON_DENSE])
    disagg, agg = table.rows
    assert disagg.prefill == PoolColumns(1, 2, 2, 1, 1, 1, 1)
    assert disagg.decode == PoolColumns(4, 3, 1, 1, 1, 1, 1)
    assert (disagg.concurrency, agg.prefill, agg.decode) == (12, PoolColumns(), PoolColumns())
    assert agg.aggregated == PoolColumns(8, None, 1, 1, 1, 1, 1)


def test_a_file_without_pool_columns_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "agg.csv"
    text = silicon_csv_text([SILICON_DENSE]).splitlines()
    keep = [i for i, name in enumerate(text[0].split(","))
            if not name.startswith(("prefill_", "decode_"))]
    path.write_text("\n".join(",".join(line.split(",")[i] for i in keep) for line in text)
                    + "\n", encoding="utf-8")
    table = read_table(path)
    assert isinstance(table, SiliconTable)
    assert table.rows[0].prefill == PoolColumns() and table.rows[0].tp_size == 1


# ---- the mapping -----------------------------------------------------------------------------


def test_a_disaggregated_row_becomes_two_pools_and_a_link(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, DISAGG)
    # H100 nodes: one 50 GB/s NIC a GPU, so a 2-GPU prefill replica sends at 100 GB/s.
    assert plan.base["deployment"] == {"dtype": "bf16", "disaggregation": {
        "prefill": {"replicas": 2, "tensor_parallel": 2, "scheduler": {"max_num_seqs": 1}},
        "decode": {"replicas": 3, "tensor_parallel": 1, "scheduler": {"max_num_seqs": 4}},
        "kv_transfer": {"bandwidth_gb_s": 100.0, "latency_s": KV_LINK_LATENCY_S}}}
    assert plan.base["workload"]["arrival"] == {"process": "closed", "concurrency": 12,
                                                "think_time_s": 0}
    assert "decode max_num_seqs 4 = decode_batch_size 4 × 1 attention-DP ranks" in (
        plan.assumptions)
    assert any(a.startswith("KV link 100 GB/s a prefill replica (2 GPUs × 50 GB/s NIC)")
               for a in plan.assumptions)
    tags = labels(read_table(write_silicon_fixture(tmp_path, [DISAGG])[0]).rows[0])
    assert (tags.mode, tags.pools) == ("disagg", "2P3D")


def test_the_scenario_layer_takes_the_mapping(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, DISAGG)
    scenario = sim.load_scenario({**plan.base, "warmup_s": 1.0, "duration_s": 2.0})
    pools = scenario.pools
    assert pools is not None
    assert [(p.replicas, p.layout.gpus, p.scheduler.max_num_seqs) for p in pools] == [
        (2, 2, 1), (3, 1, 4)]
    assert scenario.gpu_count == 2 * 2 + 3 * 1


def test_moe_pools_keep_their_attention_dp_and_experts(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, MOE)
    block = plan.base["deployment"]["disaggregation"]
    assert block["prefill"] == {"replicas": 1, "tensor_parallel": 1,
                                "data_parallel_attention": 4, "expert_parallel": 4,
                                "scheduler": {"max_num_seqs": 4}}
    assert block["decode"] == {"replicas": 2, "tensor_parallel": 1,
                               "data_parallel_attention": 8, "expert_parallel": 8,
                               "scheduler": {"max_num_seqs": 128}}
    # 4 + 2 × 8 GPUs fit one NVL72 rack: NVLink, 900 GB/s a GPU.
    assert block["kv_transfer"]["bandwidth_gb_s"] == 4 * 900.0
    assert plan.base["deployment"]["engine"] == "trtllm"


def test_the_link_leaves_nvlink_when_the_pools_span_racks() -> None:
    notes: list[str] = []
    assert kv_link_gb_s("gb200", 4, 72, notes) == 4 * 900.0
    assert kv_link_gb_s("gb300", 4, 76, notes) == 4 * 100.0
    assert kv_link_gb_s("h200_sxm", 8, 1000, notes) == 8 * 50.0
    assert "InfiniBand (76 GPUs span racks)" in notes[1]
    with pytest.raises(Skip, match="no prefill→decode KV link figure for system 'mi300x'"):
        kv_link_gb_s("mi300x", 8, 16, notes)


def test_unstated_workers_and_batches_are_assumed_and_said(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, {**DISAGG, **UNSTATED})
    block = plan.base["deployment"]["disaggregation"]
    assert [(block[p]["replicas"], block[p]["scheduler"]["max_num_seqs"])
            for p in ("prefill", "decode")] == [(1, 12), (1, 12)]
    assert "prefill_num_workers empty: one prefill replica" in plan.assumptions
    assert ("decode_num_workers empty: 1 decode replicas, the fewest whose KV caches hold "
            "every client's request") in plan.assumptions
    assert "prefill_batch_size empty: prefill max_num_seqs 12 = the concurrency" in (
        plan.assumptions)
    table, _ = rows_of(tmp_path, [{**DISAGG, **UNSTATED},
                                  {**DISAGG, "id": "half", "decode_num_workers": ""}])
    assert [labels(row).pools for row in table.rows] == [ASSUMED_POOLS, "2P?D (assumed)"]


def test_an_unstated_decode_pool_holds_every_clients_request(tmp_path: Path) -> None:
    """30,000 clients of ISL + OSL = 1,100 tokens: the decode pool gets the fewest
    replicas whose KV caches, as the scenario layer sizes one, hold all their requests."""
    clients = 30_000
    plan = plan_of(tmp_path, {**DISAGG, **UNSTATED,
                              "silicon_data_source": f"silicon_concurrency={clients}"})
    block = plan.base["deployment"]["disaggregation"]
    one = {**block, "decode": {**block["decode"], "replicas": 1}}
    scenario = sim.load_scenario({**plan.base, "warmup_s": 0.0, "duration_s": 1.0,
                                  "deployment": {**plan.base["deployment"],
                                                 "disaggregation": one}})
    assert scenario.pools is not None
    replica_tokens = pool_kv_capacity(scenario.model, scenario.pools.decode)
    need = clients * (int(DISAGG["isl"]) + int(DISAGG["osl"]))
    replicas = block["decode"]["replicas"]
    assert replicas > 1 and (replicas - 1) * replica_tokens < need <= replicas * replica_tokens
    assert block["prefill"]["replicas"] == 1
    assert f"decode_num_workers empty: {replicas} decode replicas" in " ".join(plan.assumptions)


@pytest.mark.parametrize(("change", "reason"), [
    ({"decode_pp_size": "2"}, "pipeline parallel not modelled"),
    ({"prefill_pp_size": "4"}, "pipeline parallel not modelled"),
    ({"prefill_num_workers": "0"}, "prefill_num_workers 0 is not a replica count ≥ 1"),
    ({"decode_batch_size": "0"}, "decode_batch_size 0 is not a batch limit ≥ 1"),
    ({"prefill_tp_size": ""}, "prefill_tp_size empty is not a parallel degree ≥ 1"),
    ({"decode_attention_dp_size": "0"},
     "decode_attention_dp_size 0 is not a parallel degree ≥ 1"),
    ({"silicon_data_source": "config_id=9"}, "silicon_concurrency (the concurrency) not stated"),
    ({"mode": "hybrid"}, "mode 'hybrid' not understood (agg or disagg)"),
])
def test_what_the_simulator_lacks_is_skipped_with_the_reason(
        tmp_path: Path, change: dict[str, str], reason: str) -> None:
    with pytest.raises(Skip) as caught:
        plan_of(tmp_path, {**DISAGG, **change})
    assert str(caught.value) == reason


@pytest.mark.parametrize(("change", "reason"), [
    ({"decode_moe_ep_size": "3"}, "decode_moe_ep_size 3 does not divide the replica's 8 GPUs"),
    ({"prefill_moe_tp_size": "2"},
     "prefill_moe_tp_size 2 disagrees with GPUs / prefill_moe_ep_size (4 / 4)"),
])
def test_a_pools_expert_layout_is_checked_as_an_aggregated_rows_is(
        tmp_path: Path, change: dict[str, str], reason: str) -> None:
    with pytest.raises(Skip) as caught:
        plan_of(tmp_path, {**MOE, **change})
    assert str(caught.value) == reason


# ---- end to end ------------------------------------------------------------------------------

STEP_S = 0.01
OSL = 100
TRANSFER_S = 0.5
# The tiny dense model's KV per token: K and V × 4 layers × 4 KV heads × 64 dims × 2 bytes (bf16).
KV_BYTES_PER_TOKEN = 2 * 4 * 4 * 64 * 2


def constant_plan(tmp_path: Path, row: dict[str, str], step_s: float,
                  transfer_s: float) -> Any:
    """The row's plan with every step `step_s` and a link that moves one request's KV
    (ISL + 1 tokens) in `transfer_s`, with no latency."""
    plan = plan_of(tmp_path, row)
    link_bytes = (int(row["isl"]) + 1) * KV_BYTES_PER_TOKEN
    block = plan.base["deployment"]["disaggregation"]
    slow = {**block, "kv_transfer": {"bandwidth_gb_s": link_bytes / transfer_s / 1e9,
                                     "latency_s": 0.0}}
    return replace(plan, base={**plan.base, "profile": {"kind": "constant", "step_s": step_s},
                               "deployment": {**plan.base["deployment"],
                                              "disaggregation": slow}})


ONE_EACH = {"prefill_num_workers": "1", "decode_num_workers": "1", "prefill_tp_size": "1",
            "osl": str(OSL)}


def test_the_first_token_reaches_the_client_from_the_decode_side(tmp_path: Path) -> None:
    """One client, one prefill and one decode replica, every step 10 ms: the prefill step
    computes the first token, the prompt's KV (ISL + 1 tokens) crosses a link set to take
    TRANSFER_S, and the idle decode replica admits it on landing, where the client sees its
    first token: TTFT = step + TRANSFER_S. The other OSL − 1 tokens come one a decode step:
    TPOT = (E2E − TTFT) / (OSL − 1) = the step."""
    row = {**DISAGG, **ONE_EACH, "silicon_data_source": "silicon_concurrency=1"}
    outcome = simulate_plan(constant_plan(tmp_path, row, STEP_S, TRANSFER_S))
    assert outcome.skip is None
    assert outcome.ttft_ms == pytest.approx((STEP_S + TRANSFER_S) * 1000, rel=1e-6)
    assert outcome.tpot_ms == pytest.approx(STEP_S * 1000, rel=1e-6)
    assert "TTFT to the decode side's admission" in " ".join(plan_of(tmp_path, row).assumptions)


CLIENTS = 4
STEP_EXACT_S = 2.0 ** -7  # a binary fraction: the steps' instants add up exactly


def test_the_profiling_phase_starts_cold_and_its_first_wave_queues_for_prefill(
        tmp_path: Path) -> None:
    """4 clients send at once to a prefill replica that prefills one prompt a step (batch
    limit 1), every step and every transfer one step s long. The phase holds
    BENCHMARK_ROUNDS × 4 requests. The first wave's k-th prompt is prefilled at k·s and
    lands at (k + 1)·s, on a decode step's boundary: TTFT (k + 1)·s. The clients come back
    one step apart, so every later request finds the prefill replica free: TTFT 2·s. The
    phase's mean is the average of both."""
    row = {**DISAGG, **ONE_EACH, "silicon_data_source": f"silicon_concurrency={CLIENTS}",
           "decode_batch_size": str(CLIENTS)}
    plan = constant_plan(tmp_path, row, STEP_EXACT_S, STEP_EXACT_S)
    assert plan.base["deployment"]["disaggregation"]["prefill"]["scheduler"] == {
        "max_num_seqs": 1}
    phase = run_profiling_phase(plan)
    requests = BENCHMARK_ROUNDS * CLIENTS
    assert phase.requests == len(phase.measured) == requests
    ttft_s = phase.client_ttft_s
    first_wave = sum(k + 1 for k in range(1, CLIENTS + 1)) * STEP_EXACT_S
    later = (requests - CLIENTS) * 2 * STEP_EXACT_S
    assert ttft_s.mean() == pytest.approx((first_wave + later) / requests, rel=1e-9)
    assert sorted(ttft_s[:CLIENTS] / STEP_EXACT_S) == pytest.approx([2, 3, 4, 5])
    assert phase.client_tpot_s(OSL) == pytest.approx(STEP_EXACT_S, rel=1e-9)
    outcome = simulate_plan(plan)
    assert outcome.ttft_ms == pytest.approx(ttft_s.mean() * 1000, rel=1e-9)
    assert f"profiling phase of {requests} requests" in outcome.observed


def test_a_rerun_too_large_to_draw_cuts_the_phase_and_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sized by a lifetime far below the simulated one, the first run sends too few
    requests; a rerun whose pool would pass the limit is not made, and the phase is the
    requests sent, in the order they were sent."""
    row = {**DISAGG, **ONE_EACH, "silicon_data_source": f"silicon_concurrency={CLIENTS}",
           "decode_batch_size": str(CLIENTS)}
    plan = replace(constant_plan(tmp_path, row, STEP_EXACT_S, STEP_EXACT_S),
                   lifetime_hint_s=10 * STEP_EXACT_S)
    monkeypatch.setattr(silicon_phase, "RERUN_POOL_REQUESTS", 0)
    phase = run_profiling_phase(plan)
    sent = len(phase.result.engine.arrival_s)
    assert len(phase.measured) == sent < phase.requests
    assert list(phase.result.engine.arrival_s[phase.measured]) == sorted(
        phase.result.engine.arrival_s)
    assert f"only {sent} of {phase.requests} sent" in silicon_phase.observed(phase, CLIENTS)


def test_disaggregated_rows_are_compared_beside_aggregated_ones(tmp_path: Path) -> None:
    table, models = rows_of(tmp_path, [SILICON_DENSE, {**DISAGG, "id": "pp", "decode_pp_size": "2"},
                                       DISAGG])
    out = compare_silicon(table, models, disaggregated=True)
    assert {(c.id, c.mode, c.pools, c.status.split(":")[0]) for c in out} == {
        ("dense-h100-vllm-c8", "agg", "", "compared"),
        ("pp", "disagg", "2P3D", "skipped"), ("dense-2p3d", "disagg", "2P3D", "compared")}
    assert all(c.simulated and c.simulated > 0 for c in out if c.compared)
    # Without asking, they are skipped saying how to ask.
    plain = compare_silicon(table, models)
    assert {c.status for c in plain if c.mode == "disagg"} == {
        "skipped: disaggregated: compared with --disaggregated (slow: two pools at "
        "concurrencies of thousands)"}


# ---- the summaries ---------------------------------------------------------------------------


def comparison(row_id: str, metric: str, error_pct: float | None, mode: str = "agg",
               gpu: str = "h100_sxm", pools: str = "") -> SiliconComparison:
    """A compared entry measured at 100 and simulated `error_pct` % off (None: skipped)."""
    if error_pct is None:
        return SiliconComparison(row_id, metric, 100.0, None, "skipped: pipeline parallel "
                                 "not modelled", gpu=gpu, model="deepseek-r1", mode=mode,
                                 pools=pools)
    return SiliconComparison(row_id, metric, 100.0, 100.0 + error_pct, "compared", gpu=gpu,
                             model="deepseek-r1", mode=mode, pools=pools)


ENTRIES = [
    *(comparison("agg", m, 5.0) for m in ("ttft_ms", "tpot_ms")),
    *(comparison("d1", m, e, "disagg", "gb200", "1P4D")
      for m, e in (("ttft_ms", -40.0), ("tpot_ms", 10.0))),
    *(comparison("d2", m, e, "disagg", "gb200", ASSUMED_POOLS)
      for m, e in (("ttft_ms", 20.0), ("tpot_ms", -30.0))),
    *(comparison("d3", m, e, "disagg", "b200_sxm", ASSUMED_POOLS)
      for m, e in (("ttft_ms", 60.0), ("tpot_ms", 20.0))),
    *(comparison("d4", m, None, "disagg", "b200_sxm") for m in ("ttft_ms", "tpot_ms")),
]


def test_the_aggregated_summary_leaves_the_disaggregated_rows_out() -> None:
    groups = silicon_groups(ENTRIES, "tpot_ms")
    assert [(g.by, g.group, g.count, round(g.median_abs_pct, 6)) for g in groups
            if g.by in ("all", "gpu")] == [("all", "all", 1, 5.0), ("gpu", "h100_sxm", 1, 5.0)]
    assert [c.id for c in worst(ENTRIES)] == ["agg", "agg"]
    assert skip_reasons(ENTRIES) == []


def test_the_disaggregated_block_counts_groups_and_says_it_in_a_line() -> None:
    summary = mode_summary(ENTRIES, DISAGGREGATED)
    assert (summary.rows, summary.compared) == (4, 3)
    assert summary.skips == [("pipeline parallel not modelled", 1)]
    # TPOT |errors| 10, 30, 20: median 20; on gb200 10 and 30: 20; b200 20.
    assert summary.median_pct("tpot_ms") == {"all": pytest.approx(20.0)}
    assert summary.median_pct("ttft_ms", "gpu") == {"b200_sxm": pytest.approx(60.0),
                                                    "gb200": pytest.approx(30.0)}
    assert summary.median_pct("tpot_ms", "workers") == {
        "stated": pytest.approx(10.0), "not stated (assumed)": pytest.approx(25.0)}
    assert figures_line(summary) == (
        "4 disaggregated rows, 3 compared (75 %): median |error| TTFT 40.0 %, TPOT 20.0 %; "
        "by GPU (TTFT / TPOT) b200_sxm 60.0 % / 20.0 %, gb200 30.0 % / 20.0 %; "
        "by model family (TTFT / TPOT) deepseek 40.0 % / 20.0 %")
