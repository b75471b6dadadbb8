"""Which public dataset a published row's lengths came from, and that dataset's length table.

Many benchmarks (`vllm bench serve --dataset-name sharegpt`, SGLang's `bench_serving`, the
vLLM docs' tables, Lambda's report) send requests drawn from a public dataset rather than
fixed lengths, and the row then says "ShareGPT (variable)" or only "dataset". A row names its
dataset in a `dataset` key, in its `isl`/`osl`/`scenario`/`notes` text, or through its source:
a benchmark script whose default dataset is documented (`SCRIPT_DEFAULTS`). A dataset we ship
a length table for (`calibration/datasets/<name>.yaml`, rebuilt by
`python -m calibration.sources.datasets`) gives the row its prompt and output distributions;
another named dataset is a skip that names it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from sim.scenario.workload import EmpiricalCdfLengths

# Dataset names that benchmark tools and reports use, by the pattern that finds them in a
# row's text → the name this module reports.
KNOWN = {
    r"share[\s_-]?gpt": "sharegpt",
    r"sonnet": "sonnet",
    r"burst[\s_-]?gpt": "burstgpt",
    r"lmsys": "lmsys-chat",
    r"open[\s_-]?orca": "openorca",
    r"longbench": "longbench",
    r"gsm8k": "gsm8k",
    r"mmlu": "mmlu",
}
TABLES = {"sharegpt": "sharegpt.yaml"}  # datasets with a shipped length table
# Benchmark sources (a row's `source.repo_path` up to ':') whose script picks the dataset when
# the row does not say: the repository, its dataset, and where that default is written.
SCRIPT_DEFAULTS = {
    "LambdaLabsML/vllm-benchmark": (
        "sharegpt", "the source's benchmark.py defaults to --dataset-name sharegpt, "
        "ShareGPT_V3_unfiltered_cleaned_split.json"),
}
TEXT_FIELDS = ("dataset", "isl", "osl", "scenario", "notes")


@dataclass(frozen=True)
class DatasetLengths:
    """A dataset's prompt and output length specs (scenario `empirical_cdf` mappings), their
    exact means, and the table's one-line provenance."""

    name: str
    prompt_tokens: dict[str, Any]
    output_tokens: dict[str, Any]
    mean_prompt_tokens: float
    mean_output_tokens: float
    max_total_tokens: int
    about: str


def dataset_of(row: dict[str, Any]) -> tuple[str, str] | None:
    """(the dataset's name, how it was recognised) for a row, or None when it names none."""
    for field in TEXT_FIELDS:
        text = row.get(field)
        if not isinstance(text, str):
            continue
        for pattern, name in KNOWN.items():
            if re.search(pattern, text, flags=re.IGNORECASE):
                return name, f"the row's {field} names {name}"
        if field == "dataset" and text.strip():
            return text.strip(), "the row's dataset key"
    source = row.get("source")
    repo_path = source.get("repo_path") if isinstance(source, dict) else None
    if isinstance(repo_path, str):
        default = SCRIPT_DEFAULTS.get(repo_path.split(":", 1)[0])
        if default is not None:
            return default
    return None


def lengths_for(name: str) -> DatasetLengths | None:
    """The shipped length table of a dataset, or None when there is none."""
    filename = TABLES.get(name)
    return None if filename is None else _load(filename)


@cache
def _load(filename: str) -> DatasetLengths:
    text = resources.files("calibration").joinpath("datasets").joinpath(filename).read_text("utf-8")
    table = yaml.safe_load(text)
    specs = [{"dist": "empirical_cdf", "cdf": table[key]["cdf"]}
             for key in ("prompt_tokens", "output_tokens")]
    means = [EmpiricalCdfLengths.model_validate(spec).mean_tokens for spec in specs]
    source = table["source"]
    about = (f"{table['n']} prompt/output pairs of {source['file']} ({source['tokenizer']} "
             f"tokenizer) kept by vLLM's ShareGPT filter")
    return DatasetLengths(filename.removesuffix(".yaml"), specs[0], specs[1], means[0],
                          means[1], int(table["sampling"]["max_total_tokens"]), about)
