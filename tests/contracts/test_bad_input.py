"""The bad-input table: every kind of broken input ends with exit status 2 and one line.

The README promises that bad input of any kind (YAML, keys, values, flags) stops with exit
status 2 and one line on stderr naming the key, the value and what is accepted, and that no
partial file is left behind. Each row below breaks one thing in an otherwise valid, small
scenario (`builders.TINY`) and the harness in tests/conftest.py checks that promise:
in-process through `sim.cli.main`, and for a few rows through a real `python -m sim`
subprocess as well.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pydantic
import pytest
from builders import DELETE, Builder, Case, make_dir, params, raw_file, scenario_file, tiny

import sim
from sim.cli import main


def empirical(lines: bytes) -> Builder:
    """A valid scenario whose prompt lengths come from `lengths.txt` holding `lines`."""

    def build(tmp: Path) -> list[str]:
        (tmp / "lengths.txt").write_bytes(lines)
        spec = {"dist": "empirical", "path": "lengths.txt"}
        return scenario_file(tiny(workload__prompt_tokens=spec))(tmp)

    return build


def speculative(**keys: object) -> dict[str, object]:
    """The base with `deployment.speculative`: MTP, 3 draft tokens, α 0.8, then `keys`."""
    return tiny(deployment__speculative={"method": "mtp", "num_tokens": 3,
                                         "acceptance_rate": 0.8, **keys})


def disaggregated(prefill: object = None, decode: object = None,
                  kv_transfer: object = None, **others: object) -> dict[str, object]:
    """The base served by a prefill pool and a decode pool over a 50 GB/s link, the pools
    and the link changed as given, then `others` (dotted-key overrides)."""
    block = {"prefill": prefill or {}, "decode": decode or {},
             "kv_transfer": {"bandwidth_gb_s": 50} if kv_transfer is None else kv_transfer}
    return tiny(deployment__disaggregation=block, **others)


def pooled(*pools: dict[str, object], split: str = "size", **others: object) -> dict[str, object]:
    """The base served by named pools (`deployment.pools`) split as given, then `others`."""
    return tiny(deployment__pools=list(pools), deployment__pool_split=split, **others)


SHORT_POOL = {"name": "short", "max_prompt_tokens": 512}
REST_POOL = {"name": "rest", "gpu": "h200"}

CASES = [
    Case("negative-rate", tiny(workload__arrival__rate_per_s=-3),
         "workload.arrival.rate_per_s", "-3", ("> 0",)),
    Case("zero-duration", tiny(duration_s=0), "duration_s", "0", ("> 0",)),
    Case("warmup-equals-duration", tiny(warmup_s=20), "warmup_s", "20", ("duration_s",)),
    Case("warmup-after-duration", tiny(warmup_s=35), "warmup_s", "35", ("duration_s",)),
    Case("string-for-number", tiny(duration_s="fast"), "duration_s", "'fast'",
         ("number",)),
    Case("float-for-integer", tiny(deployment__replicas=2.5), "deployment.replicas", "2.5",
         ("integer",)),
    Case("unknown-gpu", tiny(gpu="h100"), "gpu", "'h100'", ("h100-sxm", "a100-80gb")),
    Case("unknown-model", tiny(model="llama-3-8b"), "model", "'llama-3-8b'",
         ("llama-3.1-8b", "llama-3.1-70b")),
    Case("unknown-top-level-key", tiny(duraton_s=30), "duraton_s", "30",
         ("duration_s", "warmup_s")),
    Case("unknown-nested-key", tiny(deployment__schedular={"policy": "static"}),
         "deployment.schedular", "'static'", ("scheduler",)),
    Case("unknown-length-dist",
         tiny(workload__prompt_tokens={"dist": "normal", "mean": 200, "sigma": 50}),
         "workload.prompt_tokens.dist", "'normal'",
         ("fixed", "uniform", "lognormal", "geometric", "empirical")),
    Case("missing-dist-key", tiny(workload__output_tokens={"mean": 40, "sigma": 0.5}),
         "workload.output_tokens.dist", "missing"),
    Case("unknown-scheduler-policy", tiny(deployment__scheduler__policy="fifo"),
         "deployment.scheduler.policy", "'fifo'",
         ("chunked-prefill", "prefill-first", "static")),
    Case("unknown-router", tiny(deployment__router="round-robbin"), "deployment.router",
         "'round-robbin'", ("round-robin", "least-loaded", "power-of-two", "random")),
    Case("memory-utilization-above-one", tiny(deployment__gpu_memory_utilization=1.5),
         "deployment.gpu_memory_utilization", "1.5", ("≤ 1",)),
    Case("negative-sigma", tiny(workload__prompt_tokens__sigma=-0.5),
         "workload.prompt_tokens.sigma", "-0.5", ("≥ 0",)),
    Case("uniform-high-below-low",
         tiny(workload__output_tokens={"dist": "uniform", "low": 50, "high": 10}),
         "workload.output_tokens.high", "10", ("low",)),
    Case("missing-required-key", tiny(slo=DELETE), "slo", "missing", ("required",)),
    Case("gamma-without-cv",
         tiny(workload__arrival={"process": "gamma", "rate_per_s": 2}),
         "workload.arrival.cv", "missing"),
    Case("unknown-arrival-process", tiny(workload__arrival__process="uniform"),
         "workload.arrival.process", "'uniform'", ("poisson", "gamma")),
    Case("tensor-parallel-zero", tiny(deployment__tensor_parallel=0),
         "deployment.tensor_parallel", "0"),
    Case("negative-price", tiny(cost__gpu_hour_usd=-1), "cost.gpu_hour_usd", "-1"),
    Case("slo-percentile-above-100", tiny(slo__percentile=150), "slo.percentile", "150",
         ("100",)),
    Case("section-not-a-mapping", tiny(deployment=[1, 2]), "deployment", "[1, 2]",
         ("mapping",)),
    Case("unknown-profile-name", tiny(profile="measured-xyz"), "profile", "'measured-xyz'",
         ("auto", "roofline")),
    Case("broken-yaml-syntax", raw_file("name: x\nseed: 1\n\tduration_s: 20\n", "broken.yaml"),
         "broken.yaml:3", "\\t", ("YAML",), key_first=False),
    Case("yaml-is-a-list", raw_file("- duration_s: 20\n- seed: 1\n", "list.yaml"), "list.yaml",
         "[{'duration_s': 20}, {'seed': 1}]", ("mapping",), key_first=False),
    Case("empty-yaml-file", raw_file("", "empty.yaml"), "empty.yaml", "None", ("mapping",),
         key_first=False),
    Case("missing-scenario-file", lambda tmp: [str(tmp / "no-such-scenario.yaml")],
         "no-such-scenario.yaml", "no such file", key_first=False),
    Case("scenario-path-is-a-directory", lambda tmp: [str(make_dir(tmp / "scenarios.d"))],
         "scenarios.d", "directory", key_first=False),
    Case("empirical-bad-line", empirical(b"120\n# a comment\n\n300\nabc\n80\n"),
         "lengths.txt:5", "'abc'", ("positive integer",), key_first=False),
    Case("empirical-zero", empirical(b"120\n0\n"), "lengths.txt:2", "'0'", key_first=False),
    Case("empirical-empty-file", empirical(b"# nothing here\n"), "lengths.txt", "no values",
         key_first=False),
    Case("empirical-missing-file",
         tiny(workload__prompt_tokens={"dist": "empirical", "path": "nowhere.txt"}),
         "workload.prompt_tokens.path", "nowhere.txt"),
    Case("model-does-not-fit", tiny(model="llama-3.1-405b"), "deployment.tensor_parallel",
         "1", ("llama-3.1-405b", "GiB")),
    Case("seed-negative", tiny(), "--seed", "-1", flags=("--seed", "-1"), key_first=False),
    Case("seed-not-a-number", tiny(), "--seed", "abc", flags=("--seed", "abc"),
         key_first=False),
    Case("unknown-flag", tiny(), "--fast", "--fast", flags=("--fast",), key_first=False),
    Case("json-into-missing-directory", tiny(), "--json", "no-such-dir/out.json",
         ("existing directory",), flags=("--json", "no-such-dir/out.json"), output=False),
    Case("infinite-duration", tiny(duration_s=float("inf")), "duration_s", "inf"),
    Case("nan-rate", tiny(workload__arrival__rate_per_s=float("nan")),
         "workload.arrival.rate_per_s", "nan"),
    Case("json-is-an-existing-directory",
         lambda tmp: [*scenario_file(tiny())(tmp), "--json",
                      str(make_dir(tmp / "results"))],
         "--json", "results", output=False),
    # ---- deployment.speculative ------------------------------------------------------
    Case("speculative-unknown-method", speculative(method="medusa"),
         "deployment.speculative.method", "'medusa'", ("'mtp', 'draft' or 'eagle'",)),
    Case("speculative-no-draft-tokens", speculative(num_tokens=0),
         "deployment.speculative.num_tokens", "0", ("≥ 1",)),
    Case("speculative-too-many-draft-tokens", speculative(num_tokens=17),
         "deployment.speculative.num_tokens", "17", ("≤ 16",)),
    Case("speculative-rate-above-one", speculative(acceptance_rate=1.2),
         "deployment.speculative.acceptance_rate", "1.2", ("a number in (0, 1]",)),
    Case("speculative-rate-zero", speculative(acceptance_rate=0),
         "deployment.speculative.acceptance_rate", "0", ("a number in (0, 1]",)),
    Case("speculative-rate-in-list-above-one", speculative(acceptance_rate=[0.9, 0.8, 1.5]),
         "deployment.speculative.acceptance_rate", "[0.9, 0.8, 1.5]", ("(0, 1]",)),
    Case("speculative-rates-too-few", speculative(acceptance_rate=[0.9, 0.8]),
         "deployment.speculative.acceptance_rate", "[0.9, 0.8]", ("num_tokens (3)",)),
    Case("speculative-draft-without-model", speculative(method="draft"),
         "deployment.speculative.draft_model", "missing", ("method draft",)),
    Case("speculative-draft-model-with-mtp", speculative(draft_model="llama-3.1-8b"),
         "deployment.speculative.draft_model", "'llama-3.1-8b'", ("no draft_model",)),
    Case("speculative-unknown-draft-model",
         speculative(method="draft", draft_model="llama-3.2-1b"),
         "deployment.speculative.draft_model", "'llama-3.2-1b'", ("llama-3.1-8b",)),
    # ---- deployment.prefix_cache -----------------------------------------------------
    Case("prefix-block-of-zero-tokens", tiny(deployment__prefix_cache={"block_tokens": 0}),
         "deployment.prefix_cache.block_tokens", "0", ("≥ 1",)),
    Case("prefix-offload-negative", tiny(deployment__prefix_cache={"cpu_offload_gib": -1}),
         "deployment.prefix_cache.cpu_offload_gib", "-1", ("≥ 0",)),
    Case("prefix-offload-link-of-zero",
         tiny(deployment__prefix_cache={"cpu_offload_gib": 64, "cpu_offload_gb_s": 0}),
         "deployment.prefix_cache.cpu_offload_gb_s", "0", ("> 0",)),
    Case("cache-aware-without-a-cache", tiny(deployment__router="cache-aware"),
         "deployment.router", "'cache-aware'", ("prefix_cache",)),
    Case("shared-prefix-negative", tiny(workload__shared_prefix_tokens=-5),
         "workload.shared_prefix_tokens", "-5", ("≥ 0",)),
    # ---- deployment.disaggregation ---------------------------------------------------
    Case("disaggregated-decode-weights-over-memory",
         disaggregated(decode={"tensor_parallel": 1}, model="llama-3.1-70b",
                       deployment__tensor_parallel=4),
         "deployment.disaggregation.decode.tensor_parallel", "1",
         ("llama-3.1-70b", "GiB", "decode pool")),
    Case("disaggregated-prefill-tp-not-dividing-heads",
         disaggregated(prefill={"tensor_parallel": 3}),
         "deployment.disaggregation.prefill.tensor_parallel", "3", ("32 attention heads",)),
    Case("disaggregated-decode-gpu-unknown", disaggregated(decode={"gpu": "h100"}),
         "deployment.disaggregation.decode.gpu", "'h100'", ("h100-sxm",)),
    Case("disaggregated-bandwidth-zero", disaggregated(kv_transfer={"bandwidth_gb_s": 0}),
         "deployment.disaggregation.kv_transfer.bandwidth_gb_s", "0", ("> 0",)),
    Case("disaggregated-bandwidth-missing", disaggregated(kv_transfer={"latency_s": 0.001}),
         "deployment.disaggregation.kv_transfer.bandwidth_gb_s", "missing", ("required",)),
    Case("disaggregated-negative-latency",
         disaggregated(kv_transfer={"bandwidth_gb_s": 50, "latency_s": -1}),
         "deployment.disaggregation.kv_transfer.latency_s", "-1", ("≥ 0",)),
    Case("disaggregated-with-prefix-cache",
         disaggregated(deployment__prefix_cache={"enabled": True}),
         "deployment.prefix_cache", "{'enabled': True}", ("not simulated",)),
    Case("disaggregated-with-failures",
         disaggregated(deployment__failures={"mtbf_h": 1000, "mttr_h": 1}),
         "deployment.failures", "{'mtbf_h': 1000, 'mttr_h': 1}", ("not simulated",)),
    Case("disaggregated-with-speculative",
         disaggregated(deployment__speculative={"method": "mtp", "num_tokens": 2,
                                                "acceptance_rate": 0.8}),
         "deployment.speculative", "", ("not simulated",)),
    Case("disaggregated-with-sessions",
         disaggregated(workload__sessions={"turns": 3, "new_tokens": {"dist": "fixed",
                                                                      "value": 20}}),
         "workload.sessions", "", ("not simulated",)),
    Case("disaggregated-power-scaled-by-load",
         disaggregated(cost={"tco": {"capex_per_gpu_usd": 30000, "amortization_years": 5,
                                     "power_busy_w": 700, "power_idle_w": 100, "pue": 1.2,
                                     "usd_per_kwh": 0.1, "power_scaling": "load"}}),
         "cost.tco.power_scaling", "'load'", ("busy-time",)),
    Case("disaggregated-cache-aware-pool-router",
         disaggregated(prefill={"router": "cache-aware"}),
         "deployment.disaggregation.prefill.router", "'cache-aware'",
         ("least-pending-tokens",)),
    Case("disaggregated-unknown-pool-key", disaggregated(decode={"engine": "sglang"}),
         "deployment.disaggregation.decode.engine", "'sglang'", ("tensor_parallel",)),
    # ---- deployment.pools ----------------------------------------------------------------
    Case("pools-overlapping-size-thresholds",
         pooled(SHORT_POOL, {"name": "also-short", "max_prompt_tokens": 512}, REST_POOL),
         "deployment.pools.1.max_prompt_tokens", "512", ("overlap",)),
    Case("pools-two-without-a-bound", pooled(SHORT_POOL, REST_POOL, {"name": "more"}),
         "deployment.pools.2.max_prompt_tokens", "None", ("exactly one pool",)),
    Case("pools-none-without-a-bound",
         pooled(SHORT_POOL, {"name": "long", "max_prompt_tokens": 4096}),
         "deployment.pools.1.max_prompt_tokens", "4096", ("exactly one pool",)),
    Case("pools-bound-under-load-split", pooled(SHORT_POOL, REST_POOL, split="load"),
         "deployment.pools.0.max_prompt_tokens", "512", ("pool_split: size",)),
    Case("pools-repeated-name", pooled(SHORT_POOL, {"name": "short"}, split="size"),
         "deployment.pools.1.name", "'short'", ("no other pool",)),
    Case("pools-unknown-split", pooled(REST_POOL, split="by-length"),
         "deployment.pool_split", "'by-length'", ("load", "size")),
    Case("pools-empty-list", pooled(split="load"), "deployment.pools", "[]", ("at least 1",)),
    Case("pools-tp-not-dividing-heads",
         pooled({"name": "odd", "tensor_parallel": 3}, split="load"),
         "deployment.pools.0.tensor_parallel", "3", ("32 attention heads",)),
    Case("pools-weights-over-memory",
         pooled(SHORT_POOL, {"name": "small", "tensor_parallel": 1}, model="llama-3.1-70b",
                deployment__tensor_parallel=4),
         "deployment.pools.1.tensor_parallel", "1", ("llama-3.1-70b", "GiB", "small pool")),
    Case("pools-price-with-tco",
         pooled({"name": "owned", "gpu_hour_usd": 2.0}, split="load",
                cost={"tco": {"capex_per_gpu_usd": 30000, "amortization_years": 5,
                              "power_busy_w": 700, "power_idle_w": 100, "pue": 1.2,
                              "usd_per_kwh": 0.1}}),
         "deployment.pools.0.gpu_hour_usd", "2.0", ("rental",)),
    Case("pools-negative-price", pooled({"name": "cheap", "gpu_hour_usd": -1.0}, split="load"),
         "deployment.pools.0.gpu_hour_usd", "-1.0", ("≥ 0",)),
    Case("pools-with-disaggregation",
         pooled(REST_POOL, split="load", deployment__disaggregation={
             "kv_transfer": {"bandwidth_gb_s": 50}}),
         "deployment.disaggregation", "", ("not simulated",)),
    Case("pools-with-autoscaling",
         pooled(REST_POOL, split="load", deployment__autoscaling={
             "policy": "queue", "target": 1, "min_replicas": 1, "max_replicas": 3,
             "provisioning_delay_s": 5.0, "interval_s": 5.0}),
         "deployment.autoscaling", "", ("not simulated",)),
    Case("pools-bad-name", pooled({"name": "a b"}, split="load"), "deployment.pools.0.name",
         "'a b'", ()),
    # ---- bugs: each of these should pass once the code is fixed ------------------------
    Case("profile-mapping-bad-value",
         tiny(profile={"kind": "constant", "step_s": -0.01}), "profile.step_s", "-0.01"),
    Case("boolean-for-integer", tiny(deployment__replicas=True), "deployment.replicas",
         "True", ("integer",)),
    # The value of an undecodable file is whatever the fix chooses to show; only the file
    # must be named.
    Case("scenario-not-utf8", raw_file(b"name: \xff\xfe\n", "latin.yaml"), "latin.yaml", "",
         key_first=False),
    Case("empirical-not-utf8", empirical(b"120\n\xff\xfe\n"), "lengths.txt", "", key_first=False),
    Case("empirical-superscript-digit", empirical("120\n2\u00b2\n".encode()), "lengths.txt:2",
         "'2\u00b2'", key_first=False),
    Case("empirical-huge-number", empirical(b"120\n99999999999999999999999\n"),
         "lengths.txt", "99999999999999999999999", key_first=False),
]


@pytest.mark.parametrize("case", params(CASES))
def test_bad_input_in_process(case: Case, check_rejected: Callable[[Case], None]) -> None:
    check_rejected(case)


SUBPROCESS_CASES = [
    "negative-rate",
    "unknown-gpu",
    "broken-yaml-syntax",
    "missing-scenario-file",
    "empirical-bad-line",
    "model-does-not-fit",
    "seed-not-a-number",
    "json-into-missing-directory",
    "infinite-duration",
]


@pytest.mark.parametrize("case", params([c for c in CASES if c.id in SUBPROCESS_CASES]))
def test_bad_input_subprocess(case: Case,
                              check_rejected_by_subprocess: Callable[[Case], None]) -> None:
    check_rejected_by_subprocess(case)


def test_every_subprocess_case_is_in_the_table() -> None:
    assert set(SUBPROCESS_CASES) <= {case.id for case in CASES}


def test_case_ids_are_unique() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))


def test_base_scenario_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each row breaks exactly one thing, so the untouched base must run and write JSON."""
    argv = ["run", *scenario_file(tiny())(tmp_path), "--json", str(tmp_path / "out.json"),
            "--quiet"]
    assert main(argv) == 0
    assert capsys.readouterr().err == ""
    assert (tmp_path / "out.json").is_file()


def test_library_raises_input_error_not_pydantic_error() -> None:
    bad = tiny(workload__arrival__rate_per_s=-3)
    with pytest.raises(sim.InputError) as info:
        sim.load_scenario(bad)
    exc = info.value
    assert not isinstance(exc, pydantic.ValidationError)
    assert isinstance(exc, ValueError)
    assert exc.where == "workload.arrival.rate_per_s"
    assert exc.value == -3
    assert str(exc).startswith("workload.arrival.rate_per_s: -3 — expected")


def test_library_run_raises_input_error_for_a_bad_mapping() -> None:
    with pytest.raises(sim.InputError) as info:
        sim.run(tiny(deployment__router="nearest"))
    assert info.value.where == "deployment.router"


def test_library_run_raises_input_error_when_the_model_does_not_fit() -> None:
    with pytest.raises(sim.InputError) as info:
        sim.run(tiny(model="llama-3.1-405b"))
    assert info.value.where == "deployment.tensor_parallel"
    assert info.value.value == 1


def test_load_scenario_does_not_modify_the_mapping() -> None:
    data = tiny()
    snapshot = copy.deepcopy(data)
    sim.load_scenario(data)
    assert data == snapshot
