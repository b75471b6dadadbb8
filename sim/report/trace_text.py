"""Text for `tokenfactory trace`: a trace's statistics, a fit's goodness-of-fit tables and
the comment header of a fitted workload file (text only; the CLI decides where it goes)."""

from __future__ import annotations

from sim.workload.fit import WorkloadFit
from sim.workload.fitarrivals import ArrivalCheck
from sim.workload.fitlengths import QUANTILES, LengthFit
from sim.workload.stats import TraceStats


def _opt(value: float | int | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def format_stats(s: TraceStats, source: str, fmt: str) -> str:
    minutes = s.duration_s / 60
    lines = [
        f"trace        {source} ({fmt})",
        f"requests     {s.requests:,} over {s.duration_s:,.1f} s ({minutes:,.1f} min)",
        f"rate         {_opt(s.rate_per_s, ',.3f')} req/s mean; peaks {s.peak_per_s:,} in a "
        f"second, {s.peak_per_minute:,} in a minute, {_opt(s.peak_per_hour, ',')} in an hour; "
        f"quietest complete minute {_opt(s.min_per_minute, ',')}",
        f"burstiness   CV of inter-arrival gaps {_opt(s.interarrival_cv, '.3f')}, IoD of "
        f"requests per second {s.dispersion_1s:.3f} (both 1 for Poisson)",
    ]
    if s.zero_gap_fraction and s.zero_gap_fraction > 0.5:
        lines.append(f"             {s.zero_gap_fraction:.1%} of gaps are exactly 0: timestamps "
                     "come in ticks, so the CV and IoD above measure the ticks")
    lines += ["", f"{'tokens':<12}{'mean':>10}{'p50':>10}{'p90':>10}{'p99':>10}{'max':>10}"
              f"{'min':>8}"]
    for name, ls in (("prompt", s.prompt), ("output", s.output)):
        lines.append(f"{name:<12}{ls.mean:>10,.1f}{ls.p50:>10,.1f}{ls.p90:>10,.1f}"
                     f"{ls.p99:>10,.1f}{ls.max:>10,}{ls.min:>8,}")
    lines.append(f"prompt–output correlation: Pearson {_opt(s.correlation_pearson, '+.3f')}, "
                 f"Spearman {_opt(s.correlation_spearman, '+.3f')}")
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
    lines += ["", f"{'arrival model':<16}{'req/s':>9}{'c':>8}{'IoD/' + w:>10}"
              f"{'peak/' + w:>10}{'low/' + w:>9}"]
    lines.append(_arrival_row("trace", d.trace))
    for a in fit.arrivals:
        mark = " *" if a is fit.arrival else ""
        lines.append(_arrival_row(a.model + mark, a.check))
    lines.append("  (models: arrivals generated from the fitted spec over the trace's duration)")
    for role, fits, chosen in (("prompt_tokens", fit.prompts, fit.prompt),
                               ("output_tokens", fit.outputs, fit.output)):
        lines += ["", f"{role:<20}" + "".join(f"{'p' + str(q):>9}" for q in QUANTILES)
                  + f"{'mean':>9}"]
        for f in fits:
            lines.append(_length_row(f, f is chosen))
    lines.append("  (errors of lengths sampled from each model vs the trace's; * = written)")
    return "\n".join(lines)


def _arrival_row(label: str, c: ArrivalCheck) -> str:
    return (f"{label:<16}{c.rate_per_s:>9.3f}{_opt(c.burstiness_cv, '.3f'):>8}"
            f"{_opt(c.dispersion, '.2f'):>10}{c.peak_per_window:>10,}"
            f"{_opt(c.low_per_window, ','):>9}")


def _length_row(f: LengthFit, chosen: bool) -> str:
    label = f.model + (" *" if chosen else "")
    cells = "".join(f"{f.error[f'p{q}']:>+9.1%}" for q in QUANTILES)
    return f"{label:<20}{cells}{f.error['mean']:>+9.1%}"


def fit_header(fit: WorkloadFit, version: str, correlation: float | None) -> list[str]:
    """Comment lines for the fitted workload file: where it came from and how good it is."""
    def quantiles(f: LengthFit) -> str:
        return ", ".join(f"p{q} {f.error[f'p{q}']:+.1%}" for q in QUANTILES)

    d = fit.diagnosis
    lines = [
        f"Workload fitted by `tokenfactory trace fit` (tokenfactory {version})",
        f"from {fit.source} ({fit.format}): {fit.requests:,} requests over "
        f"{d.duration_s:,.1f} s.",
        f"arrival: {arrival_verdict(fit)}.",
        f"prompt_tokens: {fit.prompt.model}, sampled vs trace {quantiles(fit.prompt)}.",
        f"output_tokens: {fit.output.model}, sampled vs trace {quantiles(fit.output)}.",
    ]
    if fit.arrival.model == "rate_curve":
        lines.append(f"The rate curve spans {d.duration_s:g} s (flat beyond): use that as the "
                     "scenario's duration_s to cover its whole shape.")
    lines.append("Lengths are drawn independently of each other and of time (the trace's "
                 f"prompt-output Pearson correlation: {_opt(correlation, '+.3f')}).")
    lines.append("Paste the block below into a scenario in place of its workload.")
    return lines
