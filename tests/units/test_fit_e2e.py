"""`tokenfactory calibrate fit-e2e`: the knobs a deployment's results imply, recovered from
"measurements" the simulator itself made with known knobs; the profile it writes loads in a
scenario and changes step times by exactly those knobs; bad input exits 2 in one line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from builders import FIXTURES, Builder, Case, params, scenario

import sim
from sim.calibrate.fit_e2e import Identity, Knobs, profile_yaml
from sim.cli import main
from sim.runner.build import step_model
from sim.steptime.library import AdjustedProfileFile, load_profile
from sim.validation.results_compare import Deployment, plan_point, simulate_point, with_profile
from sim.validation.results_json import VLLM, BenchmarkPoint
from sim.validation.silicon_mapping import ModelFinder

TRUE = Knobs(step_time_scale=1.2, overhead_s=0.002, prefill_scale=1.0)
IDENTITY = Identity("truth", "h100-sxm", "llama-3.1-8b", "vllm", 1, "bf16")
DEPLOYMENT = Deployment("h100-sxm", "vllm")
FLAGS = ("--gpu", "h100-sxm", "--engine", "vllm")
LOADS = (1, 4, 16)  # closed loops: batch sizes far apart separate the scale from the overhead
ISL, OSL = 512, 64


def _vllm_result(concurrency: int, ttft_ms: float, tpot_ms: float) -> dict[str, Any]:
    """A `vllm bench serve --save-result` summary of a closed loop (the fields read)."""
    return {"model_id": "meta-llama/Llama-3.1-8B-Instruct", "request_rate": "inf",
            "burstiness": 1.0, "max_concurrency": concurrency, "completed": 100,
            "total_input_tokens": 100 * ISL, "total_output_tokens": 100 * OSL,
            "mean_ttft_ms": ttft_ms, "mean_tpot_ms": tpot_ms}


def _measured_by_the_simulator(tmp: Path) -> list[Path]:
    """Result files whose TTFT and TPOT are the simulator's own under the TRUE knobs."""
    truth = tmp / "truth.yaml"
    truth.write_text(profile_yaml(IDENTITY, TRUE, {}, {}), encoding="utf-8")
    files = []
    for n in LOADS:
        point = BenchmarkPoint(f"c{n}", VLLM, "llama-3.1-8b", n, None, 1.0, ISL, OSL,
                               {"ttft_ms": 50.0, "tpot_ms": 10.0})
        plan = plan_point(point, DEPLOYMENT, ModelFinder(None))
        values = simulate_point(with_profile(plan, str(truth))).values
        path = tmp / f"c{n}.json"
        path.write_text(json.dumps(_vllm_result(n, values["ttft_ms"], values["tpot_ms"])))
        files.append(path)
    return files


def test_fit_recovers_known_knobs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = _measured_by_the_simulator(tmp_path)
    out = tmp_path / "mine.yaml"
    assert main(["calibrate", "fit-e2e", *map(str, files), *FLAGS, "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    fitted = yaml.safe_load(out.read_text())
    # The measurements are the simulator's own, so the truth scores 0 and the search ends
    # within its last steps of it (0.3 % of scale, 0.03 ms): 2 % and 0.2 ms leave room for
    # the few settings near the truth whose medians round to the same score.
    assert fitted["step_time_scale"] == pytest.approx(1.2, rel=0.02)
    assert fitted["overhead_s"] == pytest.approx(0.002, abs=0.0002)
    assert fitted["fit_error"]["after"]["ttft_median_pct"] < 1.0
    assert fitted["fit_error"]["after"]["tpot_median_pct"] < 1.0
    assert fitted["fit_error"]["before"]["tpot_median_pct"] > 5.0  # it had something to fix
    assert fitted["fitted_on"]["files"] == [str(f) for f in files]
    assert len(fitted["fitted_on"]["points"]) == len(LOADS)
    assert f"{fitted['fitted_on']['simulations']} simulations" in printed


def _scenario_with(profile: str) -> sim.Scenario:
    return sim.load_scenario(scenario(profile=profile, deployment__replicas=1))


def test_profile_changes_step_times_by_its_knobs(tmp_path: Path) -> None:
    knobs = Knobs(step_time_scale=1.3, overhead_s=0.0025, prefill_scale=0.8)
    path = tmp_path / "adjusted.yaml"
    path.write_text(profile_yaml(IDENTITY, knobs, {"after": {"mean_of_medians_pct": 4.0}},
                                 {}), encoding="utf-8")
    assert isinstance(load_profile(path), AdjustedProfileFile)
    base, adjusted = step_model(_scenario_with("auto")), step_model(_scenario_with(str(path)))
    for batch in (1, 8, 64):
        assert adjusted.decode_fixed_s(batch) == pytest.approx(
            1.3 * base.decode_fixed_s(batch) + 0.0025)
    assert adjusted.per_kv_token_s == pytest.approx(1.3 * base.per_kv_token_s)
    # pure decode: the F(B) + c·KV form event skipping needs
    _p, decode_s = adjusted.step_s(0, 0.0, 8, 8000)
    assert decode_s == pytest.approx(adjusted.decode_fixed_s(8) + adjusted.per_kv_token_s * 8000)
    # a mixed step: the prefill part scaled by both factors, the overhead split by tokens
    (bp, bd), (ap, ad) = base.step_s(300, 45150.0, 100, 5000), adjusted.step_s(300, 45150.0,
                                                                               100, 5000)
    assert ap == pytest.approx(1.3 * 0.8 * bp + 0.0025 * 0.75)
    assert ad == pytest.approx(1.3 * bd + 0.0025 * 0.25)
    assert adjusted.provenance.source == "adjusted"
    assert adjusted.provenance.fit_error_pct == 4.0


def test_profile_for_other_hardware_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text(profile_yaml(Identity("x", "h100-sxm", "llama-3.1-8b", "sglang", 1, "bf16"),
                                 TRUE, {}, {}), encoding="utf-8")
    with pytest.raises(sim.InputError, match="fitted on sglang"):
        step_model(_scenario_with(str(path)))


def _results(raw: Any, *flags: str) -> Builder:
    def build(tmp: Path) -> list[str]:
        (tmp / "r.json").write_text(json.dumps(raw), encoding="utf-8")
        return ["fit-e2e", str(tmp / "r.json"), "-o", str(tmp / "p.yaml"), *flags]
    return build


GOOD = _vllm_result(4, 60.0, 8.0)
NO_TTFT = {k: v for k, v in GOOD.items() if k != "mean_ttft_ms"}
BURST = {**GOOD, "max_concurrency": None}

REJECTED = [
    Case("no-gpu", _results(GOOD, "--engine", "vllm"), "--gpu", "missing", ("h100-sxm",),
         command="calibrate", output=False),
    Case("no-ttft", _results(NO_TTFT, *FLAGS), "mean_ttft_ms", "missing",
         command="calibrate", output=False, key_first=False),
    Case("no-usable-point", _results(BURST, *FLAGS), "RESULTS", "no point",
         ("every request sent at once",), command="calibrate", output=False),
    Case("not-a-result", lambda tmp: ["fit-e2e", str(FIXTURES / "validate_measurements.yaml"),
                                      "-o", str(tmp / "p.yaml"), *FLAGS],
         "validate_measurements.yaml", "a measurements table", command="calibrate",
         output=False, key_first=False),
]


@pytest.mark.parametrize("case", params(REJECTED))
def test_rejected(case: Case, check_rejected: Any) -> None:
    check_rejected(case)
