"""Disaggregated measured rows (`mode: disagg` in the CSV format of silicon_sample.csv) as a
prefill pool and a decode pool.

Made-up rows of the shared header: each pool's columns become its block of
`deployment.disaggregation` (replicas = `*_num_workers`, batch limit = one rank's
`*_batch_size` × the pool's attention-DP ranks, the KV link of the row's system); what the
simulator lacks is skipped with the reason; the summaries keep the two serving modes apart.
One closed loop on a constant step checks the run end to end against arithmetic: TTFT is the
prefill step, TPOT carries the KV transfer spread over the decode steps.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from builders import SILICON_DENSE, silicon_csv_text, write_silicon_fixture

import sim
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
from sim.validation.silicon_rows import PoolColumns, SiliconTable
from sim.validation.silicon_summary import (
    DISAGGREGATED,
    figures_line,
    mode_summary,
    silicon_groups,
    skip_reasons,
    worst,
)

ASSUMED_POOLS = "1P1D (assumed)"  # the pools label of a row stating neither worker count
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
    assert f"{ASSUMED_POOLS}: a worker count not stated, one replica taken for it" in (
        plan.assumptions)
    assert "prefill_batch_size empty: prefill max_num_seqs 12 = the concurrency" in (
        plan.assumptions)
    table, _ = rows_of(tmp_path, [{**DISAGG, **UNSTATED},
                                  {**DISAGG, "id": "half", "decode_num_workers": ""}])
    assert [labels(row).pools for row in table.rows] == [ASSUMED_POOLS, "2P1D (assumed)"]


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


def test_one_client_waits_one_prefill_step_then_decodes_after_the_transfer(
        tmp_path: Path) -> None:
    """One client, one prefill and one decode replica, every step 10 ms: the prefill step
    gives the first token (TTFT = 10 ms from the send); the prompt's KV (ISL + 1 tokens)
    then crosses a link set to take TRANSFER_S, and the other OSL − 1 tokens come one a
    decode step, so TPOT = (TRANSFER_S + (OSL − 1) × step) / (OSL − 1)."""
    row = {**DISAGG, "silicon_data_source": "silicon_concurrency=1", "osl": str(OSL),
           "prefill_num_workers": "1", "decode_num_workers": "1", "prefill_tp_size": "1"}
    plan = plan_of(tmp_path, row)
    link_bytes = (int(row["isl"]) + 1) * KV_BYTES_PER_TOKEN
    block = plan.base["deployment"]["disaggregation"]
    slow = {**block, "kv_transfer": {"bandwidth_gb_s": link_bytes / TRANSFER_S / 1e9,
                                     "latency_s": 0.0}}
    plan = replace(plan, base={**plan.base, "profile": {"kind": "constant", "step_s": STEP_S},
                               "deployment": {**plan.base["deployment"],
                                              "disaggregation": slow}})
    outcome = simulate_plan(plan)
    assert outcome.skip is None
    assert outcome.ttft_ms == pytest.approx(STEP_S * 1000, rel=1e-6)
    assert outcome.tpot_ms == pytest.approx(
        (TRANSFER_S + (OSL - 1) * STEP_S) / (OSL - 1) * 1000, rel=1e-3)


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
        "stated": pytest.approx(10.0), "not stated (1 a pool assumed)": pytest.approx(25.0)}
    assert figures_line(summary) == (
        "4 disaggregated rows, 3 compared (75 %): median |error| TTFT 40.0 %, TPOT 20.0 %; "
        "by GPU (TTFT / TPOT) b200_sxm 60.0 % / 20.0 %, gb200 30.0 % / 20.0 %; "
        "by model family (TTFT / TPOT) deepseek 40.0 % / 20.0 %")
