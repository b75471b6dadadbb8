"""Rebuild `calibration/validation_errors.yaml` from a validation run's CSV.

    tokenfactory validate ../shared/data/published/aic/silicon_sample.csv \\
        --models ../shared/data/published/aic/model_configs --csv silicon.csv
    python -m calibration.sources.validation_errors silicon.csv \\
        --models ../shared/data/published/aic/model_configs

The Monte Carlo's default model error (`sim.montecarlo.model_error`): per family — GPU ×
engine × model class, and `all` at each coarser level — the distribution of ln(measured /
simulated) of the compared rows, for TPOT (the step-time scale), TTFT, and TTFT after the
step scale (TTFT ratio ÷ the same row's TPOT ratio: what a TTFT factor on top of the step
scale would have to add). Spread as the 10th/90th percentiles and the lognormal σ they imply,
(p90 − p10) / (2 × 1.2816): percentiles, because a handful of rows the model gets badly wrong
(a regime it does not cover) would dominate a standard deviation. Only rows simulated with
the operator-composed model count (`VALIDATED_SOURCES`); the others are counted in the
provenance. The output is a function of the CSV, the model folder and `--date` alone.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import math
import sys
from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sim.montecarlo.model_error import VALIDATED_SOURCES, fallbacks, model_class
from sim.provenance import software_version
from sim.validation.compare import COMPARED
from sim.validation.silicon_mapping import GPUS, ModelFinder, Skip

METRICS = {"tpot_ms": "tpot", "ttft_ms": "ttft"}
AFTER_STEP = "ttft_after_step_scale"
Z90 = 1.2815515655446004  # Φ⁻¹(0.9): p90 − p10 of a normal is 2 × Z90 × σ
COMMAND = ("tokenfactory validate ../shared/data/published/aic/silicon_sample.csv --models "
           "../shared/data/published/aic/model_configs --csv silicon.csv; python -m "
           "calibration.sources.validation_errors silicon.csv --models "
           "../shared/data/published/aic/model_configs")


def log_ratios(rows: Iterable[dict[str, str]], models: ModelFinder,
               counts: dict[str, int]) -> dict[tuple[str, str, str], dict[str, dict[str, float]]]:
    """(gpu, engine, class) → row id → metric → ln(measured / simulated); `counts` gets
    how many compared rows were left out, and why."""
    out: dict[tuple[str, str, str], dict[str, dict[str, float]]] = defaultdict(dict)
    classes: dict[str, str | None] = {}
    for row in rows:
        if row["status"] != COMPARED or row["metric"] not in METRICS:
            continue
        if row["profile_source"] not in VALIDATED_SOURCES:
            counts[f"profile {row['profile_source']}"] += 1
            continue
        gpu = GPUS.get(row["gpu"])
        if row["model"] not in classes:
            classes[row["model"]] = _class(row["model"], models)
        klass = classes[row["model"]]
        if gpu is None or klass is None:
            counts["gpu or model not found"] += 1
            continue
        ratio = float(row["measured"]) / float(row["simulated"])
        if not (math.isfinite(ratio) and ratio > 0):
            counts["ratio not a number > 0"] += 1
            continue
        out[(gpu, row["engine"], klass)].setdefault(row["id"], {})[METRICS[row["metric"]]] = (
            math.log(ratio))
    return out


def _class(model: str, models: ModelFinder) -> str | None:
    try:
        found = models.lookup(model, [])
    except Skip:
        return None
    return None if found is None else model_class(found[1])


def spread(values: list[float]) -> dict[str, Any]:
    p10, median, p90 = (float(q) for q in np.percentile(values, (10, 50, 90)))
    return {"n": len(values), "median_log": _r(median), "p10_log": _r(p10),
            "p90_log": _r(p90), "sigma_log": _r((p90 - p10) / (2 * Z90)),
            "median_ratio": _r(math.exp(median))}


def families(groups: dict[tuple[str, str, str], dict[str, dict[str, float]]]) -> dict[str, Any]:
    """Every family and its coarser `all` families (each row in all four), sorted by key."""
    pooled: dict[str, list[dict[str, float]]] = defaultdict(list)
    for (gpu, engine, klass), by_id in groups.items():
        rows = list(by_id.values())
        for key in fallbacks(gpu, engine, klass):
            pooled[key].extend(rows)
    out: dict[str, Any] = {}
    for key in sorted(pooled):
        rows = pooled[key]
        entry: dict[str, Any] = {}
        for metric in METRICS.values():
            values = [r[metric] for r in rows if metric in r]
            if values:
                entry[metric] = spread(values)
        after = [r["ttft"] - r["tpot"] for r in rows if "ttft" in r and "tpot" in r]
        if after:
            entry[AFTER_STEP] = spread(after)
        out[key] = entry
    return out


def build(csv_path: Path, models_dir: Path | None, built: str) -> dict[str, Any]:
    data = csv_path.read_bytes()
    counts: dict[str, int] = defaultdict(int)
    rows = csv.DictReader(data.decode("utf-8").splitlines())
    groups = log_ratios(rows, ModelFinder(models_dir), counts)
    return {
        "about": "End-to-end model error per family (GPU/engine/model class, `all` at coarser "
                 "levels): ln(measured / simulated) over the rows `tokenfactory validate` "
                 "compared; the Monte Carlo samples step_time_scale from `tpot` "
                 "(sim.montecarlo.model_error). Rebuilt by python -m "
                 "calibration.sources.validation_errors.",
        "provenance": {
            "command": COMMAND,
            "source": "measured end-to-end rows of NVIDIA AIConfigurator's silicon_sample.csv "
                      "(github.com/ai-dynamo/aiconfigurator, Apache-2.0)",
            "csv_sha256": hashlib.sha256(data).hexdigest(),
            "date": built,
            "tokenfactory": software_version(),
            "profile_sources": list(VALIDATED_SOURCES),
            "left_out": dict(sorted(counts.items())),
            "spread": "p10/p90 of ln(measured / simulated); sigma_log = (p90 - p10) / 2.563",
            AFTER_STEP: "ln(TTFT ratio) - ln(TPOT ratio) of the same row",
        },
        "families": families(groups),
    }


def _r(value: float) -> float:
    return round(value, 4)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", type=Path, help="the CSV of tokenfactory validate --csv")
    parser.add_argument("--models", type=Path, default=None,
                        help="the folder of config.json files validate was given")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--date", default=date.today().isoformat(),
                        help="the build date written into the provenance (default today)")
    args = parser.parse_args(argv)
    path = args.out / "validation_errors.yaml"
    text = yaml.safe_dump(build(args.csv, args.models, args.date), sort_keys=False, width=100,
                          allow_unicode=True, default_flow_style=None)
    path.write_text(text, encoding="utf-8")
    sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
