"""The run record: the same seed gives an equal record whatever the wall clock said, the
`--json` document and the runs.csv row are the record's fields under their contract names."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from builders import dynamic, scenario

import sim
from sim.metrics.record import RECORD_FIELDS, RunRecord
from sim.montecarlo.execute import ITEM_COLUMNS, METRICS, metrics_row
from sim.runner import build as run_inputs
from sim.runner import result as run_result

TCO = {"capex_per_gpu_usd": 30000, "server_network_share_usd": 13800, "amortization_years": 5,
       "power_busy_w": 700, "power_idle_w": 100, "pue": 1.2, "usd_per_kwh": 0.1,
       "hosting_usd_per_gpu_year": 876, "maintenance_fraction_per_year": 0.04}


def _small(**overrides: Any) -> dict[str, Any]:
    return scenario(duration_s=20.0, warmup_s=2.0, **overrides)


@pytest.fixture(scope="module")
def rented() -> sim.Result:
    return sim.run(_small())


@pytest.fixture(scope="module")
def owned() -> sim.Result:
    return sim.run(_small(cost={"tco": TCO}))


def test_the_same_seed_gives_an_equal_record_whatever_the_wall_time(rented) -> None:
    again = sim.run(_small())
    assert again.record == rented.record
    assert hash(again.record) == hash(rented.record)
    # The same engine output assembled with another wall time: the timing differs, the
    # record does not, and the document shows the wall time it was given.
    s = rented.scenario
    slow = run_result.build(s, rented.seed, rented.workload, rented.engine,
                            run_inputs.step_model(s), run_inputs.kv_capacity(s),
                            wall_s=1234.5, exact=False)
    assert slow.timing != rented.timing
    assert slow.record == rented.record
    assert slow.to_dict()["sim"]["wall_s"] == 1234.5
    assert slow.to_dict()["sim"]["requests_per_wall_s"] == len(rented.workload) / 1234.5
    assert not {"wall_s", "requests_per_wall_s"} & set(RECORD_FIELDS)


def test_another_seed_gives_another_record(rented) -> None:
    other = sim.run(_small(), seed=rented.seed + 1)
    assert other.record != rented.record


def test_a_record_survives_pickling_for_worker_processes(owned) -> None:
    assert pickle.loads(pickle.dumps(owned.record)) == owned.record


# Document path → record field, chosen among the pairs rendering could mix up: input and
# output, p50 and p99, TTFT and TPOT, configured and measured replicas, window start and end.
RENDERED = {
    ("tokens", "input"): "completed_input_tokens",
    ("tokens", "output"): "completed_output_tokens",
    ("tokens", "generated"): "generated_tokens",
    ("tokens", "prefilled"): "prefilled_tokens",
    ("throughput", "input_tokens_per_s"): "input_tokens_per_s",
    ("throughput", "output_tokens_per_s"): "output_tokens_per_s",
    ("latency_s", "ttft", "p50"): "ttft_p50_s",
    ("latency_s", "ttft", "p99"): "ttft_p99_s",
    ("latency_s", "tpot", "p50"): "tpot_p50_s",
    ("latency_s", "e2e", "mean"): "e2e_mean_s",
    ("latency_s", "queue", "p90"): "queue_p90_s",
    ("cost", "usd_per_million_tokens", "input"): "usd_per_million_input",
    ("cost", "usd_per_million_tokens", "output"): "usd_per_million_output",
    ("cost", "usd_per_million_tokens", "blended"): "usd_per_million_blended",
    ("cost", "usd_per_million_tokens", "goodput"): "usd_per_million_goodput",
    ("cost", "gpu_hour_usd"): "gpu_hour_usd",
    ("cost", "facility_w_per_gpu"): "facility_w_per_gpu",
    ("cost", "energy_j_per_token"): "energy_j_per_token",
    ("requests", "completed"): "requests_completed",
    ("requests", "measured"): "requests_measured",
    ("requests", "preempted"): "preemptions",
    ("requests", "preempted_requests"): "requests_preempted",
    ("utilization", "busy_fraction"): "busy_fraction",
    ("utilization", "batch_size_mean"): "batch_size_mean",
    ("slo", "attainment"): "slo_attainment",
    ("slo", "met"): "slo_met",
    ("availability", "replicas_billed_mean"): "replicas_billed_mean",
    ("fleet", "replicas"): "fleet_replicas",
    ("fleet", "kv_capacity_tokens_per_replica"): "kv_capacity_tokens_per_replica",
    ("profile", "source"): "profile_source",
    ("sim", "events"): "events",
    ("sim", "end_s"): "end_s",
}


def _at(document: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        document = document[key]
    return document


@pytest.mark.parametrize("which", ["rented", "owned"])
def test_the_document_holds_the_record_fields_under_their_keys(which, request) -> None:
    result = request.getfixturevalue(which)
    r, d = result.record, result.to_dict()
    for path, name in RENDERED.items():
        assert _at(d, path) == getattr(r, name), path
    # The checks above can tell the pairs apart only if their values differ.
    assert r.completed_input_tokens != r.completed_output_tokens
    assert r.input_tokens_per_s != r.output_tokens_per_s
    assert r.ttft_p50_s != r.ttft_p99_s
    assert d["sim"]["window_s"] == [r.window_start_s, r.window_end_s] == [2.0, 20.0]
    assert d["cost"]["gpu_hour_usd_by_item"] == r.gpu_hour_usd_by_item


def test_owned_gpus_render_their_cost_items_in_order(owned) -> None:
    r, d = owned.record, owned.to_dict()
    assert d["cost"]["model"] == r.cost_model == "tco"
    items = d["cost"]["gpu_hour_usd_by_item"]
    assert list(items) == ["capex", "maintenance", "hosting", "power"]
    assert items == {"capex": r.gpu_hour_usd_capex, "maintenance": r.gpu_hour_usd_maintenance,
                     "hosting": r.gpu_hour_usd_hosting, "power": r.gpu_hour_usd_power}
    assert r.gpu_hour_usd_rental is None
    assert sum(items.values()) == pytest.approx(r.gpu_hour_usd)


def test_each_document_is_a_fresh_copy(rented) -> None:
    first = rented.to_dict()
    first["profile"]["details"]["changed"] = True
    first["requests"]["capped"]["prompt_tokens"] = -1
    again = rented.to_dict()
    assert "changed" not in again["profile"]["details"]
    assert again["requests"]["capped"]["prompt_tokens"] == rented.record.prompt_tokens_capped


def test_the_runs_csv_row_is_the_record_fields() -> None:
    assert set(METRICS.values()) <= set(RECORD_FIELDS)
    assert set(ITEM_COLUMNS) <= set(RECORD_FIELDS)
    result = sim.run(dynamic("failures", "chunked-prefill"))  # requeues and preemptions
    r = result.record
    row = metrics_row(r)
    assert list(row) == [*METRICS, *ITEM_COLUMNS]
    for column, name in METRICS.items():
        assert row[column] == getattr(r, name), column
    assert row["preempted"] == r.preemptions
    assert row["requests_completed"] == r.requests_completed
    assert row["usd_per_million_input"] == r.usd_per_million_input
    assert row["usd_per_million_output"] == r.usd_per_million_output
    assert row["gpu_hour_usd_rental"] == r.gpu_hour_usd == 2.5
    assert row["gpu_hour_usd_capex"] is None
    # The row agrees with the document the CLI writes.
    d = result.to_dict()
    assert row["ttft_p99_s"] == d["latency_s"]["ttft"]["p99"]
    assert row["slo_met"] == d["slo"]["met"]


def test_the_record_is_frozen(rented) -> None:
    with pytest.raises(AttributeError):
        rented.record.busy_fraction = 0.0  # type: ignore[misc]
    assert isinstance(rented.record, RunRecord)
