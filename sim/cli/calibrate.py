"""`tokenfactory calibrate fit|measure|fit-e2e`: from operator timings to a step-time profile,
or from a deployment's own benchmark results to the end-to-end knobs of an adjusted one."""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from sim.calibrate.fit import check_compatible, fit_profile, merge
from sim.calibrate.fit_e2e import Identity, fit, fitted_profile
from sim.calibrate.measurements import read_measurements
from sim.calibrate.roofline import EfficiencyFit
from sim.cli.commands import COMMANDS
from sim.cli.common import check_output_path, write_text
from sim.cli.validate import add_deployment_flags, deployment
from sim.errors import InputError
from sim.hardware import catalog
from sim.report.calibrate_text import format_fit_errors
from sim.scenario.profiles import RooflineProfile
from sim.steptime.fitted import fitted_efficiency
from sim.validation.files import ResultsTable, read_table
from sim.validation.results_compare import fit_plans, simulator
from sim.validation.results_json import FORMATS, BenchmarkPoint

HARNESS = "calibration.harness"  # run with `python -m`, never imported

EPILOG = """\
examples:
  tokenfactory calibrate measure --model llama-3.1-8b --tp 1 --out measurements/
      time the operators of one decoder layer on this machine's GPU (needs PyTorch)
  tokenfactory calibrate fit measurements/h100-llama-3.1-8b-tp1.csv -o calibration/profiles/my.yaml
      fit a profile; use it in a scenario with `profile: <its name>` (or `auto` once it is in
      calibration/profiles/)
  tokenfactory calibrate fit-e2e results/*.json --gpu h100-sxm --engine vllm -o mine.yaml
      fit step_time_scale, a per-step overhead and a prefill factor to your own benchmark
      results (vllm bench serve, GuideLLM, AIPerf); use it with `profile: mine.yaml`
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
    e2e = verbs.add_parser(
        "fit-e2e", help="fit end-to-end knobs to your own benchmark results",
        description="Simulate every load point of the benchmark result files (vllm bench "
        "serve --save-result, GuideLLM, AIPerf / GenAI-Perf JSON) on the deployment the flags "
        "name, and fit step_time_scale, a per-step overhead and a prefill factor that "
        "minimise the median |error| of TTFT and TPOT; write a `kind: adjusted` profile.")
    e2e.add_argument("results", type=Path, nargs="+", help="benchmark result JSON file(s)")
    e2e.add_argument("-o", "--output", type=Path, required=True, help="profile YAML to write")
    e2e.add_argument("--name", help="profile name (default: the output file's stem)")
    e2e.add_argument("--models", type=Path, metavar="DIR",
                     help="Hugging Face configs of the files' models (org--name_config.json)")
    add_deployment_flags(e2e)
    return cal


def execute(args: argparse.Namespace) -> int:
    if args.verb == "measure":
        return _measure(args)
    if args.verb == "fit-e2e":
        return _fit_e2e(args)
    return _fit(args)


def _fit_e2e(args: argparse.Namespace) -> int:
    check_output_path("--output", args.output)
    points: list[BenchmarkPoint] = []
    for path in args.results:
        table = read_table(path)
        if not isinstance(table, ResultsTable):
            raise InputError(str(path), "a measurements table", "a benchmark result JSON: "
                             + ", ".join(FORMATS))
        points.extend(table.points)
    chosen, skipped = fit_plans(points, deployment(args), args.models)
    if not chosen:
        reasons = "; ".join(f"{pid}: {why}" for pid, why in skipped)
        raise InputError("RESULTS", "no point the simulator can run",
                         f"at least one closed-loop or Poisson load point (skipped: {reasons})")
    models = {plan.model.name for plan, _ in chosen}
    if len(models) > 1:
        raise InputError("--model", ", ".join(sorted(models)), "results of one model (a "
                         "profile is fitted for one deployment)")
    plans, targets = [plan for plan, _ in chosen], [target for _, target in chosen]
    identity = Identity(args.name or args.output.stem, args.gpu, models.pop(), args.engine,
                        args.tensor_parallel, args.dtype)
    with tempfile.TemporaryDirectory() as folder:
        result = fit(targets, identity, simulator(plans), Path(folder))
    write_text(args.output, fitted_profile(result, identity, targets,
                                           [str(p) for p in args.results]), "--output")
    k, before, after = result.knobs, result.before, result.after
    print(f"{len(targets)} points fitted ({len(skipped)} skipped), {result.settings} settings "
          f"× {len(targets)} points = {result.simulations} simulations")
    print(f"step_time_scale {k.step_time_scale:.4g}, overhead_s {k.overhead_s:.4g}, "
          f"prefill_scale {k.prefill_scale:.4g}")
    print(f"median |error| TTFT {before.ttft_median_pct:.1f}% → {after.ttft_median_pct:.1f}%, "
          f"TPOT {before.tpot_median_pct:.1f}% → {after.tpot_median_pct:.1f}%")
    for pid, why in skipped:
        print(f"skipped {pid}: {why}")
    print(f"wrote {args.output} (profile {identity.name}, kind adjusted)")
    return 0


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
