"""`tokenfactory trace stats|fit TRACE`: look at a request trace, or fit a workload to it."""

from __future__ import annotations

import argparse
from pathlib import Path

import sim
from sim.cli.commands import COMMANDS
from sim.cli.common import (
    FIGURE_BYTES,
    check_output_path,
    check_writable_dir,
    outputs,
    positive_number,
    write_text,
)
from sim.errors import InputError
from sim.report.trace_text import fit_header, format_fit, format_stats
from sim.scenario.traces import ROLES, TRACE_FORMATS, Trace, read_trace
from sim.workload.fit import fit_workload, workload_yaml
from sim.workload.fitlengths import LENGTH_MODELS, fit_lengths
from sim.workload.stats import trace_stats

LENGTH_TOLERANCE = 0.10  # a length model within 10 % at p50, p90 and p99 is good enough

FORMATS_HELP = """\
trace formats (--format; auto decides from the file):
  azure     Azure LLM inference CSV: TIMESTAMP (date and time), ContextTokens, GeneratedTokens
  mooncake  Mooncake JSON lines: timestamp (ms), input_length, output_length
  burstgpt  BurstGPT CSV: Timestamp (s), Request tokens, Response tokens
  csv       any CSV with a header: --columns names the three columns, --timestamp-unit the unit

To replay a trace instead of synthetic traffic, give a scenario
  workload: {trace: {path: conv.csv, format: auto, speedup: 1.0, scale: 1.0,
                     start_s: 0, duration_s: null}}
Requests in [start_s, start_s + duration_s) of the trace (seconds after its first request;
default the whole trace) arrive at (t - start_s) / speedup; scale thins (< 1) or replicates
(> 1) them. Only those arriving before the scenario's duration_s are simulated (a warning
counts any cut), and the metrics window stays [warmup_s, duration_s).
"""

EXAMPLES = """\
examples:
  tokenfactory trace stats AzureLLMInferenceTrace_conv.csv --plot figures/
      requests, rate peaks, burstiness, length percentiles; arrival and length figures
  tokenfactory trace fit mooncake_conversation_trace.jsonl -o workload.yaml
      fit arrivals and lengths, print how faithful each model is, write the workload block
  tokenfactory trace stats my.csv --columns timestamp=ts,prompt_tokens=in,output_tokens=out \\
      --timestamp-unit ms
"""


def add_parser(sub) -> argparse.ArgumentParser:
    trace = sub.add_parser(
        "trace", help=COMMANDS["trace"],
        description="Look at a production request trace (arrival times and prompt/output "
        "tokens) or fit a synthetic workload to it.",
        epilog=FORMATS_HELP + "\n" + EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = trace.add_subparsers(dest="action", required=True, metavar="ACTION",
                                   parser_class=type(trace))
    stats = actions.add_parser(
        "stats", help="requests, rate, burstiness, length percentiles; --plot for figures",
        description="Print a trace's statistics: requests, duration, mean rate and peaks per "
        "second, minute and hour, burstiness (CV of inter-arrival gaps, index of dispersion of "
        "requests per second), prompt and output length percentiles and their correlation.",
        epilog=FORMATS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    _trace_arguments(stats)
    stats.add_argument("--plot", type=Path, metavar="DIR",
                       help="write arrival_rate.png and lengths.png (with the fitted length "
                       "models drawn over the histograms) into DIR, creating it if needed")
    stats.add_argument("--json", type=Path, metavar="FILE", help="also write the statistics")
    fit = actions.add_parser(
        "fit", help="fit arrivals and lengths; write a workload block, print goodness of fit",
        description="Fit a synthetic workload to a trace and write it as a `workload:` block. "
        "Arrivals: poisson, gamma (fitted CV) or, when the rate moves between windows, a "
        "piecewise-constant rate_curve. Lengths: lognormal, lognormal_mixture or "
        "empirical_cdf, the simplest within 10% of the trace at p50, p90 and p99. The tables "
        "printed compare each model, sampled, with the trace.",
        epilog=FORMATS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    _trace_arguments(fit)
    fit.add_argument("-o", "--output", type=Path, required=True, metavar="FILE",
                     help="the workload YAML to write")
    fit.add_argument("--window-s", type=positive_number("number of seconds"), default=60.0,
                     metavar="S",
                     help="window for the stationarity check and the rate curve's steps "
                     "(default 60)")
    fit.add_argument("--lengths", choices=("auto", *LENGTH_MODELS), default="auto",
                     help="length model to write (default auto: the simplest good enough)")
    return trace


def execute(args: argparse.Namespace) -> int:
    return _stats(args) if args.action == "stats" else _fit(args)


def _trace_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trace", type=Path, metavar="TRACE", help="trace file")
    parser.add_argument("--format", choices=TRACE_FORMATS, default="auto",
                        help="trace format (default auto)")
    parser.add_argument("--columns", type=_columns, metavar="ROLE=NAME,...",
                        help="csv format: header names of timestamp, prompt_tokens and "
                        "output_tokens (defaults: those names)")
    parser.add_argument("--timestamp-unit", choices=("s", "ms", "us", "datetime"),
                        help="csv format: unit of the timestamp column (default s)")


def _columns(text: str) -> dict[str, str]:
    mapping = {}
    for part in text.split(","):
        role, _, name = part.partition("=")
        if role.strip() not in ROLES or not name.strip():
            raise argparse.ArgumentTypeError(
                f"{part!r}: expected ROLE=NAME with ROLE one of {', '.join(ROLES)}")
        mapping[role.strip()] = name.strip()
    return mapping


def _read(args: argparse.Namespace) -> Trace:
    if (args.columns or args.timestamp_unit) and args.format not in ("auto", "csv"):
        flag = "--columns" if args.columns else "--timestamp-unit"
        raise InputError(flag, args.columns or args.timestamp_unit,
                         f"no {flag} with --format {args.format} (its columns are fixed); "
                         "use --format csv")
    return read_trace(args.trace, args.format, args.columns, args.timestamp_unit, key="TRACE")


def _stats(args: argparse.Namespace) -> int:
    check_output_path("--json", args.json)
    plot_dir = args.plot
    if plot_dir is not None:
        check_writable_dir("--plot", plot_dir, 2 * FIGURE_BYTES, create=True)
    trace = _read(args)
    stats = trace_stats(trace)
    figures = _figures(trace) if plot_dir is not None else {}
    with outputs("--plot") as staged:  # the figures and the JSON, or none of them
        if figures:
            staged.directory(plot_dir)
            for name, png in figures.items():
                staged.bytes(plot_dir / name, png)
        if args.json is not None:
            staged.json(args.json, {"trace": trace.source, "format": trace.format,
                                    **stats.to_dict()}, "--json")
    print(format_stats(stats, trace.source, trace.format))
    for name in figures:
        print(f"wrote {plot_dir / name}")
    return 0


def _figures(trace: Trace) -> dict[str, bytes]:
    # matplotlib loads only when figures are asked for.
    from sim.report.plots import png_bytes
    from sim.report.plots.trace import arrival_rate_figure, lengths_figure

    title = Path(trace.source).name
    fits = {"prompt_tokens": fit_lengths(trace.prompt_tokens, LENGTH_TOLERANCE),
            "output_tokens": fit_lengths(trace.output_tokens, LENGTH_TOLERANCE)}
    return {"arrival_rate.png": png_bytes(arrival_rate_figure(trace, title)),
            "lengths.png": png_bytes(lengths_figure(trace, fits, title))}


def _fit(args: argparse.Namespace) -> int:
    check_output_path("--output", args.output)
    trace = _read(args)
    fit = fit_workload(trace, args.window_s, args.lengths, LENGTH_TOLERANCE)
    header = fit_header(fit, sim.__version__, trace_stats(trace).correlation_pearson)
    write_text(args.output, workload_yaml(fit, header), "--output")
    print(format_fit(fit))
    print(f"\nwrote {args.output}")
    return 0
