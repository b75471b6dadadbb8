"""`tokenfactory calibrate fit|measure`: from operator timings to a step-time profile."""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

import yaml

from sim.calibrate.fit import check_compatible, fit_profile, merge
from sim.calibrate.measurements import read_measurements
from sim.calibrate.roofline import EfficiencyFit
from sim.cli.commands import COMMANDS
from sim.cli.common import check_output_path, write_text
from sim.errors import InputError
from sim.hardware import catalog
from sim.report.calibrate_text import format_fit_errors
from sim.scenario.schema import RooflineProfile
from sim.steptime.fitted import fitted_efficiency

HARNESS = "calibration.harness"  # run with `python -m`, never imported

EPILOG = """\
examples:
  tokenfactory calibrate measure --model llama-3.1-8b --tp 1 --out measurements/
      time the operators of one decoder layer on this machine's GPU (needs PyTorch)
  tokenfactory calibrate fit measurements/h100-llama-3.1-8b-tp1.csv -o calibration/profiles/my.yaml
      fit a profile; use it in a scenario with `profile: <its name>` (or `auto` once it is in
      calibration/profiles/)
"""


def add_parser(sub) -> argparse.ArgumentParser:
    cal = sub.add_parser(
        "calibrate", help=COMMANDS["calibrate"],
        description="Turn operator timings into a step-time profile: `measure` runs the PyTorch "
        "harness on this machine, `fit` fits a profile from its CSV files.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = cal.add_subparsers(dest="verb", required=True, metavar="VERB")
    fit = verbs.add_parser("fit", help="fit a profile from measurement CSV files",
                           description="Fit a profile (one GPU, model, tensor parallel degree "
                           "and dtype) from harness measurement files; operators that were not "
                           "measured fall back to roofline terms, and the profile says so.")
    fit.add_argument("measurements", type=Path, nargs="+", help="measurements CSV file(s)")
    fit.add_argument("-o", "--output", type=Path, required=True, help="profile YAML to write")
    fit.add_argument("--name", help="profile name (default: the output file's stem)")
    fit.add_argument("--gpu", help="catalogue GPU key when the files' header has no gpu_key")
    fit.add_argument("--overhead-s", type=float, default=None, metavar="S",
                     help="per-step engine overhead (default: the GPU's fitted value)")
    measure = verbs.add_parser(
        "measure", help="run the PyTorch operator harness on this machine",
        description="Run the PyTorch harness (python -m calibration.harness); everything after "
        "`measure` is passed to it — see `python -m calibration.harness --help`.")
    # Everything it does not know is the harness's (see `main`'s passthrough).
    measure.set_defaults(passthrough=True)
    return cal


def execute(args: argparse.Namespace) -> int:
    if args.verb == "measure":
        return _measure(args)
    return _fit(args)


def _measure(args: argparse.Namespace) -> int:
    """The harness runs as its own program: the simulator never imports it (nor torch), and
    its exit status, output and errors are the command's."""
    if importlib.util.find_spec("torch") is None:
        raise InputError("calibrate measure", "PyTorch not installed",
                         "an environment with torch (pip install 'tokenfactory[harness]')")
    return subprocess.run([sys.executable, "-m", HARNESS, *args.extra_argv],
                          check=False).returncode


def _fit(args: argparse.Namespace) -> int:
    check_output_path("--output", args.output)
    sets = [read_measurements(path) for path in args.measurements]
    names = [str(p) for p in args.measurements]
    check_compatible(sets, names)
    m = merge(sets)
    gpu_key = args.gpu or m.header.get("gpu_key", "")
    gpus, models = catalog.gpus(), catalog.models()
    if gpu_key not in gpus:
        raise InputError("--gpu", gpu_key or "(none)",
                         "a catalogue GPU key naming the measured GPU: " + ", ".join(gpus))
    if m.header["model"] not in models:
        raise InputError(f"{names[0]}: header model", m.header["model"],
                         "a catalogue model key: " + ", ".join(models))
    fitted = fitted_efficiency(gpu_key)
    defaults = RooflineProfile(kind="roofline")
    params = fitted[0] if fitted else {
        "compute_efficiency": defaults.compute_efficiency,
        "bandwidth_efficiency": defaults.bandwidth_efficiency,
        "layer_overhead_s": defaults.layer_overhead_s, "overhead_s": defaults.overhead_s}
    efficiency = EfficiencyFit(params["bandwidth_efficiency"], params["compute_efficiency"],
                               params["layer_overhead_s"], 0.0, 0.0, 0)
    overhead_s = params["overhead_s"] if args.overhead_s is None else args.overhead_s
    if overhead_s < 0:
        raise InputError("--overhead-s", overhead_s, "a number ≥ 0")
    name = args.name or args.output.stem
    profile = fit_profile(m, name, gpus[gpu_key], models[m.header["model"]], efficiency,
                          overhead_s, where=names[0])
    write_text(args.output, yaml.safe_dump(profile.model_dump(), sort_keys=False, width=100),
               "--output")
    if profile.fit_error:
        print(format_fit_errors(profile.fit_error))
    print(f"wrote {args.output} (profile {name}, source {profile.source})")
    return 0
