"""Rebuild `calibration/datasets/sharegpt.yaml`: ShareGPT's prompt and output lengths as the
vLLM benchmark samples them, from the public token counts in a traces folder.

    python -m calibration.sources.datasets ../shared/data/traces

`vllm bench serve --dataset-name sharegpt` (and `benchmarks/benchmark_serving.py` before it)
takes each conversation's first human turn as the prompt and the first model reply as the
output (its token count becomes the request's `max_tokens`), and drops a pair whose prompt or
output is under 4 tokens, whose prompt is over 1024, or whose prompt + output is over 2048
(`is_valid_sequence` in `vllm/benchmarks/datasets.py`). Published rows measured that way
(`sim.validation.datasets`) draw their lengths from this table instead of being skipped.

We have no ShareGPT text and no tokenizer, only Sarathi-Serve's per-request token counts
(Llama-2 tokenizer, requests of up to 8k tokens). The table applies vLLM's filter to those
counts. That is an approximation, and the file says how far off it is: Sarathi's requests are
not only first turns (their prompts are longer), and Llama-2 splits text into more tokens
than the Llama-3 tokenizers of most benchmarked models. The output is a function of the
input file alone (no dates, no randomness).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sim.workload.fitlengths import CDF_PROBABILITIES
from sim.workload.yamlnumbers import bare, sig

TRACE_FILE = "sharegpt_8k_filtered_stats_llama2_tokenizer.csv"
TABLE_FILE = "sharegpt.yaml"
MIN_TOKENS = 4  # vLLM: prompt or output shorter than this is dropped
MAX_PROMPT_TOKENS = 1024
MAX_TOTAL_TOKENS = 2048
# What a vLLM v0.5.4 ShareGPT run recorded (Lambda's report, the rows this table is for):
# requests, total input tokens and total output tokens over them, Llama-3.1 tokenizer.
CHECK_REQUESTS, CHECK_PROMPT_TOKENS, CHECK_OUTPUT_TOKENS = 320, 65578, 44041
CHECK_SOURCE = ("github.com/LambdaLabsML/vllm-benchmark @a9b42a5, results/prompt_320/"
                "1xA100-80GB-SXM/Meta-Llama-3.1-8B-FP8_tp1_len2000.json (vLLM v0.5.4 "
                "benchmark_serving.py, ShareGPT_V3_unfiltered_cleaned_split.json, Llama-3.1 "
                "tokenizer)")


def read_counts(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(prompt tokens, output tokens) per row of a Sarathi/Vidur processed-trace CSV
    (`num_prefill_tokens,num_decode_tokens,...`)."""
    table = np.loadtxt(path, delimiter=",", skiprows=1, usecols=(0, 1), ndmin=2)
    return table[:, 0].astype(np.int64), table[:, 1].astype(np.int64)


def vllm_filter(prompt: np.ndarray, output: np.ndarray) -> np.ndarray:
    """True where vLLM's ShareGPT sampling keeps the pair."""
    return ((prompt >= MIN_TOKENS) & (output >= MIN_TOKENS) & (prompt <= MAX_PROMPT_TOKENS)
            & (prompt + output <= MAX_TOTAL_TOKENS))


def quantile_cdf(tokens: np.ndarray) -> list[list[float | int]]:
    """[[tokens, P(length ≤ tokens)], ...] at `CDF_PROBABILITIES` (every 1 %, every 0.1 %
    above p99), the form a scenario's `empirical_cdf` length takes; tokens to 0.1."""
    quantiles = np.round(np.quantile(tokens, CDF_PROBABILITIES), 1)
    return [[bare(q), bare(p)] for q, p in zip(quantiles, CDF_PROBABILITIES, strict=True)]


def build(traces: Path) -> dict[str, Any]:
    path = traces / TRACE_FILE
    data = path.read_bytes()
    prompt_all, output_all = read_counts(path)
    keep = vllm_filter(prompt_all, output_all)
    prompt, output = prompt_all[keep], output_all[keep]
    spearman = np.corrcoef(_ranks(prompt), _ranks(output))[0, 1]
    check_in = CHECK_PROMPT_TOKENS / CHECK_REQUESTS
    check_out = CHECK_OUTPUT_TOKENS / CHECK_REQUESTS
    return {
        "about": "ShareGPT prompt/output lengths as vLLM's benchmark samples them (first human "
                 "turn, first reply), for published rows measured on ShareGPT. Rebuilt by "
                 "python -m calibration.sources.datasets ../shared/data/traces.",
        "source": {
            "file": TRACE_FILE,
            "sha256": hashlib.sha256(data).hexdigest(),
            "upstream": "github.com/microsoft/sarathi-serve, data/processed_traces/"
                        f"{TRACE_FILE} (blob 85fc0434, commit 72339db), Apache-2.0",
            "cite": "Agrawal et al., Taming Throughput-Latency Tradeoff in LLM Inference with "
                    "Sarathi-Serve, OSDI 2024; token counts derived from ShareGPT conversations",
            "tokenizer": "Llama-2",
            "rows": int(prompt_all.size),
        },
        "sampling": {
            "rule": "vLLM benchmarks (vllm/benchmarks/datasets.py ShareGPTDataset, "
                    "is_valid_sequence; benchmarks/benchmark_serving.py "
                    "sample_sharegpt_requests before it): prompt = first human turn, output = "
                    "first reply's token count; drop a pair with prompt or output < 4 tokens, "
                    "prompt > 1024 or prompt + output > 2048",
            "min_tokens": MIN_TOKENS,
            "max_prompt_tokens": MAX_PROMPT_TOKENS,
            "max_total_tokens": MAX_TOTAL_TOKENS,
            "kept": int(keep.sum()),
        },
        "approximation": {
            "how": "vLLM's filter applied to Sarathi-Serve's per-request counts: they are not "
                   "only first turns (longer prompts than vLLM's sampling gives) and use the "
                   "Llama-2 tokenizer; prompt and output are drawn independently (the table's "
                   "correlation is near 0), so a drawn pair may exceed 2048 tokens in total",
            "check": {"source": CHECK_SOURCE, "requests": CHECK_REQUESTS,
                      "prompt_tokens": CHECK_PROMPT_TOKENS,
                      "output_tokens": CHECK_OUTPUT_TOKENS,
                      "mean_prompt_tokens": sig(check_in, 4),
                      "mean_output_tokens": sig(check_out, 4),
                      "table_over_check_prompt": sig(prompt.mean() / check_in, 3),
                      "table_over_check_output": sig(output.mean() / check_out, 3),
                      "note": "the run's outputs are what the model generated (it may stop "
                              "before max_tokens; failed requests count 0), the table's are "
                              "the dataset replies"},
        },
        "n": int(prompt.size),
        "correlation": {"pearson": sig(np.corrcoef(prompt, output)[0, 1], 3),
                        "spearman": sig(spearman, 3)},
        "prompt_tokens": _lengths(prompt),
        "output_tokens": _lengths(output),
    }


def _lengths(tokens: np.ndarray) -> dict[str, Any]:
    p50, p90, p99 = np.percentile(tokens, (50, 90, 99))
    return {"mean": sig(tokens.mean(), 5), "p50": bare(p50), "p90": bare(p90), "p99": bare(p99),
            "max": int(tokens.max()), "cdf": quantile_cdf(tokens)}


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean of their positions), for Spearman's rho."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.arange(values.size, dtype=np.float64)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / counts)[inverse]


def dump(table: dict[str, Any]) -> str:
    return yaml.safe_dump(table, sort_keys=False, width=100, allow_unicode=True,
                          default_flow_style=None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("traces", type=Path, help=f"the folder holding {TRACE_FILE}")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parents[1] / "datasets")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / TABLE_FILE
    path.write_text(dump(build(args.traces)), encoding="utf-8")
    sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
