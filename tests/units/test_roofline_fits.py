"""Roofline efficiencies fitted on the shipped operator tables (`calibration/roofline_fits.yaml`):
the fitter on synthetic points whose factors are known, the roofline terms of a real layer
worked by hand, the shipped file against a rebuild, the leave-one-GPU-out error a spec-only
GPU can expect, and what `fitted_efficiency` hands the step model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from builders import REPO

from calibration.sources import aic_roofline
from sim.calibrate import roofline as fit
from sim.hardware import catalog
from sim.scenario.profiles import RooflineProfile
from sim.steptime import operators
from sim.steptime.fitted import fitted_efficiency
from sim.steptime.operators import Curve, OperatorTables

SHIPPED = REPO / "calibration" / "roofline_fits.yaml"


@pytest.fixture(scope="module")
def rebuilt() -> dict[str, Any]:
    return aic_roofline.build()


def test_the_layer_fit_recovers_the_factors_that_made_the_points() -> None:
    memory = np.repeat([1e-5, 4e-5, 2e-4], 6)
    compute = np.tile(np.geomspace(1e-7, 1e-2, 6), 3)
    truth = fit.LayerFit(compute_efficiency=0.7, bandwidth_efficiency=0.85,
                         layer_overhead_s=1.2e-5)
    points = fit.LayerPoints(memory, compute, np.zeros_like(memory))
    points = fit.LayerPoints(memory, compute, truth.predict_s(points))
    assert fit.fit_layers(points) == truth


def test_the_allreduce_fit_recovers_latency_and_link_efficiency() -> None:
    gpu = catalog.gpus()["h100-sxm"]  # 900 GB/s both ways: 450 GB/s one way
    sizes = [2.0 ** i for i in range(10, 30)]
    # Two GPUs: the ring sends the whole message once; eight: 2·7/8 of it.
    ms = {g: [1e3 * (6e-6 + ring * x / (450e9 * 0.6)) for x in sizes]
          for g, ring in (("2", 1.0), ("8", 1.75))}
    tables = OperatorTables(gpu="h100-sxm", aic_system="h100_sxm", engine="vllm",
                            provenance={}, all_reduce={g: Curve(x=sizes, ms=v)
                                                       for g, v in ms.items()})
    points = fit.allreduce_points(tables, gpu, 2.0 ** 12, 2.0 ** 28)
    assert points.measured_s.size == 2 * 17
    assert fit.fit_allreduce(points) == fit.LinkFit(0.6, 6e-6)


def test_a_real_layer_has_the_weights_and_terms_worked_by_hand() -> None:
    gpu = catalog.gpus()["h100-sxm"]
    model = {"llama-3.1-8b": catalog.models()["llama-3.1-8b"]}
    tables = operators.tables("h100-sxm", "vllm")
    assert tables is not None
    curves = {c.label: c for c in fit.layer_curves(tables, model, (1, 2))}
    # qkv 6144×4096, o 4096×4096, gate_up 28672×4096, down 4096×14336 on one GPU at tp 1.
    assert curves["llama-3.1-8b tp1"].weight_params == 4096 * (6144 + 4096 + 28672 + 14336)
    # tp 2: q 2048 + k, v 2 × 512 wide; o 4096 × 2048; gate_up 14336 × 4096; down 4096 × 7168.
    assert curves["llama-3.1-8b tp2"].weight_params == 4096 * (3072 + 2048 + 14336 + 7168)
    one = curves["llama-3.1-8b tp1"]
    points = fit.LayerPoints.of([one], gpu)
    assert points.memory_s[0] == pytest.approx(2 * one.weight_params / 3.35e12)
    assert points.compute_s[0] == pytest.approx(2 * one.weight_params / 989.4e12)
    # The measured layer is slower than either bound alone, and not by orders of magnitude.
    ratio = one.seconds / np.maximum(points.memory_s, points.compute_s)
    assert np.all(ratio > 1.0) and np.all(ratio < 3.0)


def test_the_shipped_fits_are_what_the_shipped_tables_give(rebuilt: dict[str, Any]) -> None:
    assert aic_roofline.render(rebuilt) == SHIPPED.read_text(encoding="utf-8")


def test_every_measured_gpu_is_fitted_and_every_spec_only_one_transferred(
        rebuilt: dict[str, Any]) -> None:
    measured = {g for g, _ in operators.available()}
    assert set(rebuilt["fits"]) == measured
    spec_only = set(catalog.gpus()) - measured
    assert spec_only <= set(rebuilt["transfers"])
    for gpu, entry in rebuilt["fits"].items():
        RooflineProfile(kind="roofline", **{k: entry[k] for k in aic_roofline.PARAMS})
        assert entry["fit_error"]["median_pct"] < 10, gpu
        assert len(entry["engines"]) == 3, gpu


def test_leaving_one_gpu_out_predicts_its_layers_better_than_the_plain_roofline(
        rebuilt: dict[str, Any]) -> None:
    """The error a spec-only GPU can expect: each datacenter GPU's own tables against the
    other GPUs' median factors, and that transfer beats the untuned defaults."""
    gpus = catalog.gpus()
    plain = RooflineProfile(kind="roofline").model_dump(exclude={"kind"})
    transferred, untuned = [], []
    for held_out in aic_roofline.DATACENTER:
        entry = rebuilt["leave_one_out"][held_out]
        assert held_out not in entry["from"]
        assert entry["linear"]["median_pct"] < 15, held_out
        m = aic_roofline.measure(gpus[held_out])
        sources = [rebuilt["fits"][g] for g in aic_roofline.DATACENTER if g != held_out]
        transferred.append(m.errors(aic_roofline.median_params(sources))[0])
        untuned.append(m.errors(plain)[0])
    pooled = np.concatenate(transferred)
    assert np.median(pooled) < 0.6 * np.median(np.concatenate(untuned))
    assert fit.error_summary(pooled) == {
        k: v for k, v in rebuilt["default"]["fit_error"].items() if k != "method"}


def test_fitted_efficiency_for_measured_transferred_and_inline_gpus() -> None:
    own = fitted_efficiency("h100-sxm")
    assert own is not None
    params, provenance = own
    assert "transferred" not in provenance
    assert provenance["fit_error"]["mape_pct"] > 0  # select.py reports this one
    RooflineProfile(kind="roofline", **params)

    gb300 = fitted_efficiency("gb300")
    b300 = fitted_efficiency("b300")
    assert gb300 is not None and b300 is not None
    assert gb300[0] == b300[0] and "Blackwell Ultra" in gb300[1]["transferred"]
    assert gb300[1]["efficiencies_fitted_on"] == "b300"

    for amd in ("mi300x", "mi325x", "mi355x"):
        found = fitted_efficiency(amd)
        assert found is not None and "no AMD measurements" in found[1]["transferred"]
    inline = fitted_efficiency("my-own-gpu")
    assert inline is not None and "spec sheet" in inline[1]["transferred"]
    assert inline[0] == fitted_efficiency("mi355x")[0]  # type: ignore[index]
