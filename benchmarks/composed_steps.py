"""What the operator-composed step model gives for a few well-known deployments.

    python benchmarks/composed_steps.py

Batch-1 and batch-64 decode steps and a 2,048-token prefill, by component, for Llama-3.1-8B
on one H100 (vLLM, bf16), Llama-3.1-70B on four, and DeepSeek-V3 on eight H200 in fp8 with
tensor and expert parallelism; the model configs come from the shared published data
(`../shared/data/published/aic/model_configs/`). Nothing here is compared with measured
end-to-end rows: `tokenfactory validate` does that.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from sim.hardware import catalog
from sim.hardware.catalog import ModelSpec
from sim.hardware.hfconfig import model_from_config, model_name
from sim.hardware.layout import Layout
from sim.steptime import composed, operators

CONFIGS = Path(__file__).resolve().parents[2] / "shared/data/published/aic/model_configs"
MAX_STEP_TOKENS = 8192 + 256
CONTEXT_TOKENS = 1024


def hf(file_name: str) -> ModelSpec:
    config = json.loads((CONFIGS / file_name).read_text(encoding="utf-8"))
    return model_from_config(config, model_name(file_name), file_name)


def show(label: str, model: ModelSpec, gpu_name: str, layout: Layout) -> None:
    tables = operators.tables(gpu_name, layout.engine)
    if tables is None:
        print(f"{label}: no operator tables for {gpu_name} {layout.engine}")
        return
    gpu = catalog.gpus()[gpu_name]
    started = time.perf_counter()
    step = composed.build(tables, model, gpu, layout, MAX_STEP_TOKENS)
    built_ms = (time.perf_counter() - started) * 1e3
    comp = composed.compose(tables, model, gpu, layout, MAX_STEP_TOKENS)

    def decode_ms(batch: int) -> float:
        kv = batch * CONTEXT_TOKENS
        return (step.decode_fixed_s(batch) + step.per_kv_token_s * kv) * 1e3

    prefill_ms = sum(step.step_s(2048, 2048 * 2049 / 2, 0, 0)) * 1e3
    print(f"{label}: decode B=1 {decode_ms(1):.2f} ms, B=64 {decode_ms(64):.2f} ms "
          f"({CONTEXT_TOKENS} tokens of context each); prefill 2048 {prefill_ms:.1f} ms; "
          f"error {step.provenance.fit_error_pct:.1f}%; built in {built_ms:.0f} ms")
    parts = composed.breakdown(comp, 1, CONTEXT_TOKENS)
    print("    B=1 by component (ms): "
          + ", ".join(f"{k} {v * 1e3:.3f}" for k, v in parts.items()))
    if step.provenance.details["fallbacks"]:
        print(f"    fallbacks: {step.provenance.details['fallbacks']}")


def main() -> None:
    models = catalog.models()
    show("llama-3.1-8b h100-sxm vllm bf16", models["llama-3.1-8b"], "h100-sxm", Layout())
    show("llama-3.1-70b h100-sxm vllm bf16 tp4", models["llama-3.1-70b"], "h100-sxm",
         Layout(tensor_parallel=4))
    deepseek = hf("deepseek-ai--DeepSeek-V3_config.json")
    fp8 = {"dtype": "fp8", "kv_cache_dtype": "fp8"}
    show("deepseek-v3 8×h200 vllm fp8 tp8", deepseek, "h200", Layout(tensor_parallel=8, **fp8))
    show("deepseek-v3 8×h200 vllm fp8 tp8 ep8", deepseek, "h200",
         Layout(tensor_parallel=8, expert_parallel=8, **fp8))


if __name__ == "__main__":
    main()
