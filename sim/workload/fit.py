"""A synthetic workload fitted to a trace: arrival process, prompt and output lengths, and
the `workload:` YAML block a scenario can use in place of replaying the trace.

The arrival model comes from `fitarrivals` and the length models from `fitlengths`; each
candidate carries the figures that show how faithful it is, so a caller can print them next
to the choice. Fitting needs no randomness of its own; the checks draw from fixed seeds, so
the same trace always gives the same file.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.scenario.traces import Trace
from sim.workload.fitarrivals import ArrivalDiagnosis, ArrivalFit, fit_arrivals
from sim.workload.fitlengths import LENGTH_MODELS, LengthFit, choose, fit_lengths

YAML_WIDTH = 96


@dataclass(frozen=True)
class WorkloadFit:
    source: str
    format: str
    requests: int
    diagnosis: ArrivalDiagnosis
    arrivals: list[ArrivalFit]
    arrival: ArrivalFit  # the chosen one
    prompts: list[LengthFit]
    prompt: LengthFit
    outputs: list[LengthFit]
    output: LengthFit

    def workload(self) -> dict:
        return {"arrival": self.arrival.spec, "prompt_tokens": self.prompt.spec,
                "output_tokens": self.output.spec}


def fit_workload(trace: Trace, window_s: float = 60.0, lengths: str = "auto",
                 tolerance: float = 0.1) -> WorkloadFit:
    """Fit every candidate and choose: arrivals by the checks in `fitarrivals`; lengths by
    `lengths` (a name in LENGTH_MODELS), or with "auto" the simplest model within
    `tolerance` of the trace's p50, p90 and p99."""
    diagnosis, arrivals, arrival = fit_arrivals(trace.arrival_s, window_s, trace.source)
    prompts = fit_lengths(trace.prompt_tokens, tolerance)
    outputs = fit_lengths(trace.output_tokens, tolerance)
    if lengths == "auto":
        prompt, output = choose(prompts, tolerance), choose(outputs, tolerance)
    else:
        index = LENGTH_MODELS.index(lengths)
        prompt, output = prompts[index], outputs[index]
    return WorkloadFit(trace.source, trace.format, len(trace.arrival_s), diagnosis, arrivals,
                       arrival, prompts, prompt, outputs, output)


def workload_yaml(fit: WorkloadFit, header: list[str]) -> str:
    """The fitted `workload:` block, after `header` as comment lines."""
    lines = [f"# {line}".rstrip() for line in header]
    lines += ["workload:", *_mapping_lines(fit.workload(), "  ")]
    return "\n".join(lines) + "\n"


def _mapping_lines(mapping: dict, pad: str) -> list[str]:
    lines = []
    for key, value in mapping.items():
        if isinstance(value, dict):
            lines += [f"{pad}{key}:", *_mapping_lines(value, pad + "  ")]
        elif isinstance(value, list):
            lines += _flow_list(f"{pad}{key}: ", [_flow(v) for v in value], pad + "  ")
        else:
            lines.append(f"{pad}{key}: {value}")
    return lines


def _flow(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return str(value)


def _flow_list(prefix: str, items: list[str], pad: str) -> list[str]:
    """A YAML flow sequence, wrapped (indented under its key) to stay readable."""
    lines, line = [], prefix + "["
    for i, item in enumerate(items):
        text = item + (", " if i < len(items) - 1 else "]")
        if len(line) + len(text.rstrip()) > YAML_WIDTH and line.strip() not in ("", "["):
            lines.append(line.rstrip())
            line = pad
        line += text
    return [*lines, line if items else prefix + "[]"]
