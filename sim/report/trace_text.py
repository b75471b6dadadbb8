"""Text for `tokenfactory trace`: a trace's statistics, a fit's goodness-of-fit tables and
the comment header of a fitted workload file (text only; the CLI decides where it goes).

The trace's file name is shown `printable`: in the header it must not end a comment line
of the YAML it heads, and on a terminal it must not be obeyed."""

from __future__ import annotations

from sim.report.text import Column, or_dash, printable, table
from sim.workload.fit import WorkloadFit
from sim.workload.fitarrivals import ArrivalCheck
from sim.workload.fitlengths import QUANTILES, LengthFit
from sim.workload.stats import TraceStats

TOKEN_COLUMNS = (Column("tokens", "<", 12), *(Column(t, ">", 10)
                                              for t in ("mean", "p50", "p90", "p99", "max")),
                 Column("min", ">", 8))


def _arrival_columns(window: str) -> tuple[Column, ...]:
    return (Column("arrival model", "<", 16), Column("req/s", ">", 9), Column("c", ">", 8),
            Column("IoD/" + window, ">", 10), Column("peak/" + window, ">", 10),
            Column("low/" + window, ">", 9))


def _length_columns(role: str) -> tuple[Column, ...]:
    return (Column(role, "<", 20), *(Column(f"p{q}", ">", 9) for q in QUANTILES),
            Column("mean", ">", 9))


def format_stats(s: TraceStats, source: str, fmt: str) -> str:
    minutes = s.duration_s / 60
    lines = [
        f"trace        {printable(source)} ({printable(fmt)})",
        f"requests     {s.requests:,} over {s.duration_s:,.1f} s ({minutes:,.1f} min)",
        f"rate         {or_dash(s.rate_per_s, ',.3f')} req/s mean; peaks {s.peak_per_s:,} in a "
        f"second, {s.peak_per_minute:,} in a minute, {or_dash(s.peak_per_hour, ',')} in an hour; "
        f"quietest complete minute {or_dash(s.min_per_minute, ',')}",
        f"burstiness   CV of inter-arrival gaps {or_dash(s.interarrival_cv, '.3f')}, IoD of "
        f"requests per second {s.dispersion_1s:.3f} (both 1 for Poisson)",
    ]
    if s.zero_gap_fraction and s.zero_gap_fraction > 0.5:
        lines.append(f"             {s.zero_gap_fraction:.1%} of gaps are exactly 0: timestamps "
                     "come in ticks, so the CV and IoD above measure the ticks")
    tokens = [[name, *(f"{v:,.1f}" for v in (ls.mean, ls.p50, ls.p90, ls.p99)),
               f"{ls.max:,}", f"{ls.min:,}"]
              for name, ls in (("prompt", s.prompt), ("output", s.output))]
    lines += ["", *table(TOKEN_COLUMNS, tokens, gap=0)]
    lines.append(f"prompt–output correlation: Pearson {or_dash(s.correlation_pearson, '+.3f')}, "
                 f"Spearman {or_dash(s.correlation_spearman, '+.3f')}")
    return "\n".join(lines)


def arrival_verdict(fit: WorkloadFit) -> str:
    d = fit.diagnosis
    c = 1.0 if d.trace.burstiness_cv is None else d.trace.burstiness_cv
    if d.dispersion_limit is None:
        why = f"fewer than 5 complete {d.window_s:g} s windows, so taken as stationary"
    elif d.stationary:
        why = (f"requests per {d.window_s:g} s vary {d.trace.dispersion:.2f}× their mean, within "
               f"what a stationary process with burstiness c = {c:.3f} gives (≤ "
               f"{d.dispersion_limit:.2f})")
    else:
        why = (f"requests per {d.window_s:g} s vary {d.trace.dispersion:.2f}× their mean, more "
               f"than a stationary process with burstiness c = {c:.3f} gives (≤ "
               f"{d.dispersion_limit:.2f}): the rate moves")
    return f"{fit.arrival.model} — {why}"


def format_fit(fit: WorkloadFit) -> str:
    d = fit.diagnosis
    w = f"{d.window_s:g}s"
    lines = [f"arrivals: {arrival_verdict(fit)}"]
    if d.tick_s is not None:
        lines.append(f"  (timestamps come in {d.tick_s:g} s ticks: c is measured from the "
                     "requests per tick; the fitted models spread arrivals out)")
    arrivals = [_arrival_cells("trace", d.trace)]
    arrivals += [_arrival_cells(a.model + (" *" if a is fit.arrival else ""), a.check)
                 for a in fit.arrivals]
    lines += ["", *table(_arrival_columns(w), arrivals, gap=0)]
    lines.append("  (models: arrivals generated from the fitted spec over the trace's duration)")
    for role, fits, chosen in (("prompt_tokens", fit.prompts, fit.prompt),
                               ("output_tokens", fit.outputs, fit.output)):
        lengths = [_length_cells(f, f is chosen) for f in fits]
        lines += ["", *table(_length_columns(role), lengths, gap=0)]
    lines.append("  (errors of lengths sampled from each model vs the trace's; * = written)")
    return "\n".join(lines)


def _arrival_cells(label: str, c: ArrivalCheck) -> list[str]:
    return [label, f"{c.rate_per_s:.3f}", or_dash(c.burstiness_cv, ".3f"),
            or_dash(c.dispersion, ".2f"), f"{c.peak_per_window:,}", or_dash(c.low_per_window, ",")]


def _length_cells(f: LengthFit, chosen: bool) -> list[str]:
    label = f.model + (" *" if chosen else "")
    return [label, *(f"{f.error[f'p{q}']:+.1%}" for q in QUANTILES), f"{f.error['mean']:+.1%}"]


def fit_header(fit: WorkloadFit, version: str, correlation: float | None) -> list[str]:
    """Comment lines for the fitted workload file: where it came from and how good it is."""
    def quantiles(f: LengthFit) -> str:
        return ", ".join(f"p{q} {f.error[f'p{q}']:+.1%}" for q in QUANTILES)

    d = fit.diagnosis
    lines = [
        f"Workload fitted by `tokenfactory trace fit` (tokenfactory {version})",
        f"from {printable(fit.source)} ({printable(fit.format)}): {fit.requests:,} requests over "
        f"{d.duration_s:,.1f} s.",
        f"arrival: {arrival_verdict(fit)}.",
        f"prompt_tokens: {fit.prompt.model}, sampled vs trace {quantiles(fit.prompt)}.",
        f"output_tokens: {fit.output.model}, sampled vs trace {quantiles(fit.output)}.",
    ]
    if fit.arrival.model == "rate_curve":
        lines.append(f"The rate curve spans {d.duration_s:g} s (flat beyond): use that as the "
                     "scenario's duration_s to cover its whole shape.")
    lines.append("Lengths are drawn independently of each other and of time (the trace's "
                 f"prompt-output Pearson correlation: {or_dash(correlation, '+.3f')}).")
    lines.append("Paste the block below into a scenario in place of its workload.")
    return lines
