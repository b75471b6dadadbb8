"""Rebuild the shipped Vidur profiles from Vidur's published operator timings.

    python -m calibration.sources.build VIDUR_DIR [--out calibration]

VIDUR_DIR holds Vidur's `compute__<gpu>__<model>__mlp.csv` and `network__<gpu>_dgx__all_reduce.csv`
files (github.com/microsoft/vidur, data/profiling). Writes `profiles/*.yaml`; the timings
themselves stay outside the project. The roofline efficiencies each GPU's Vidur timings give
fill the operators Vidur did not time (attention) in that GPU's profiles, and are used for
nothing else: `roofline_fits.yaml`, which the roofline step model reads, is fitted on the
measured operator tables instead (`calibration.sources.aic_roofline`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from calibration.sources import vidur
from sim.calibrate.fit import fit_profile, smooth_table
from sim.calibrate.roofline import LinearSet, fit_efficiency
from sim.hardware import catalog
from sim.hardware.catalog import GpuSpec, ModelSpec
from sim.steptime.library import Table

# (Vidur file, catalogue model whose layers have exactly those shapes, models it stands for)
SETS = [
    ("compute__h100__meta-llama__Llama-2-7b-hf__mlp.csv", "llama-2-7b", ("llama-2-7b",)),
    ("compute__h100__meta-llama__Llama-2-70b-hf__mlp.csv", "llama-2-70b",
     ("llama-2-70b", "llama-3.1-70b")),
    ("compute__a100__meta-llama__Meta-Llama-3-8B__mlp.csv", "llama-3.1-8b", ("llama-3.1-8b",)),
    ("compute__a100__meta-llama__Meta-Llama-3-70B__mlp.csv", "llama-3.1-70b",
     ("llama-3.1-70b",)),
]
TP_DEGREES = (1, 2, 4, 8)
# Engine overhead per step that operator timings cannot show (scheduling, sampling, launches
# outside the layers); the validation against published end-to-end rows is its check.
STEP_OVERHEAD_S = 0.002


def build(vidur_dir: Path, out: Path) -> list[Path]:
    models, gpus = catalog.models(), catalog.gpus()
    loaded = []  # (gpu key, measured model, stands-for models, tp, measurements)
    for filename, measured_model, stands_for in SETS:
        for tp in TP_DEGREES:
            m = vidur.read_mlp(vidur_dir / filename, measured_model, tp)
            loaded.append((m.header["gpu_key"], measured_model, stands_for, tp, m))

    fits, written = {}, []
    for gpu_key in sorted({entry[0] for entry in loaded}):
        sets = [LinearSet.from_measurements(m, models[model], 2.0)
                for g, model, _, _, m in loaded if g == gpu_key]
        fits[gpu_key] = fit_efficiency(sets, gpus[gpu_key])

    profiles_dir = out / "profiles"
    profiles_dir.mkdir(parents=True, exist_ok=True)
    for gpu_key, measured_model, stands_for, tp, m in loaded:
        fit = fits[gpu_key]
        network = vidur_dir / f"network__{gpu_key.split('-')[0]}_dgx__all_reduce.csv"
        for model_key in stands_for:
            model = models[model_key]
            if not _fits_in_memory(model, gpus[gpu_key], tp):
                continue
            all_reduce = _all_reduce_table(network, tp, model.hidden) if tp > 1 else None
            name = f"{gpu_key}_{model_key}_tp{tp}_bf16"
            m.header["model"] = model_key
            m.header["measured_layers_of"] = measured_model
            m.header["dtype"] = "bf16"
            m.header["note"] = ("Vidur timed fp16; bf16 runs at the same tensor-core rate. "
                                "Attention was not in the published data: roofline terms with "
                                "this GPU's fitted efficiencies.")
            profile = fit_profile(m, name, gpus[gpu_key], model, fit, STEP_OVERHEAD_S,
                                  all_reduce, where=m.header["source"])
            path = profiles_dir / f"{name}.yaml"
            path.write_text(_dump(profile.model_dump()), encoding="utf-8")
            written.append(path)
    return written


def _fits_in_memory(model: ModelSpec, gpu: GpuSpec, tp: int) -> bool:
    assert model.params is not None  # ModelSpec derives it at construction when omitted
    return model.params * 2.0 < 0.9 * gpu.memory_bytes * tp


def _all_reduce_table(path: Path, tp: int, hidden: int) -> Table:
    size_bytes, seconds = vidur.read_all_reduce(path, tp)
    tokens = size_bytes / (hidden * 2.0)  # bf16 activations of width `hidden`
    keep = tokens >= 1
    return smooth_table(tokens[keep], seconds[keep]).table


def _dump(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False, width=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("vidur_dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args(argv)
    if not args.vidur_dir.is_dir():
        sys.stderr.write(f"build: {args.vidur_dir}: not a folder of Vidur CSV files\n")
        return 2
    for path in build(args.vidur_dir, args.out):
        sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
