"""The deployment keys of a 2026 layout (expert_parallel, data_parallel_attention, dtype,
kv_cache_dtype, engine): bad values and layouts no engine can serve stop at loading with
exit status 2 and one line naming the key, the value and what fits; layouts engines serve
load, FP4 on GPUs without FP4 tensor cores included (weight-only, as vLLM serves MXFP4 on
Hopper)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from builders import Case, params, tiny

import sim

# A mixture of experts whose experts are 90 wide: 8 GPUs split as 2 ranks of 4 leave 22.5
# columns a GPU; 4 ranks of 2 (45) and 8 ranks of 1 fit.
MOE_90 = {"name": "moe-90", "layers": 2, "hidden": 64, "ffn_intermediate": 90, "heads": 8,
          "kv_heads": 8, "vocab": 1000, "experts": 8, "experts_per_token": 2}


def _deployment(**keys: Any) -> dict[str, Any]:
    return tiny(**{f"deployment__{key}": value for key, value in keys.items()})


BAD = [
    # ---- the keys' own values --------------------------------------------------------------
    Case("dtype-int4", _deployment(dtype="int4"), "deployment.dtype", "int4",
         ("'bf16', 'fp16', 'fp8' or 'fp4'",)),
    Case("kv-cache-dtype-fp4", _deployment(kv_cache_dtype="fp4"), "deployment.kv_cache_dtype",
         "fp4", ("'auto', 'bf16', 'fp16' or 'fp8'",)),
    Case("engine-unknown", _deployment(engine="tgi"), "deployment.engine", "tgi",
         ("'vllm', 'sglang' or 'trtllm'",)),
    Case("expert-parallel-zero", _deployment(expert_parallel=0), "deployment.expert_parallel",
         "0", ("≥ 1",)),
    Case("attention-dp-fractional", _deployment(data_parallel_attention=1.5),
         "deployment.data_parallel_attention", "1.5", ("integer",)),
    Case("replica-of-2048-gpus", _deployment(tensor_parallel=64, data_parallel_attention=32),
         "deployment.data_parallel_attention", "32", ("at most 16", "1,024 GPUs")),
    # ---- layouts no engine serves ----------------------------------------------------------
    Case("expert-parallel-on-a-dense-model", _deployment(expert_parallel=2),
         "deployment.expert_parallel", "2", ("llama-3.1-8b is a dense model",)),
    Case("expert-parallel-not-dividing-experts",
         tiny(model="mixtral-8x7b", deployment__tensor_parallel=2,
              deployment__data_parallel_attention=4, deployment__expert_parallel=3),
         "deployment.expert_parallel", "3", ("8 routed experts", "8 GPUs",
                                              "one of 1, 2, 4, 8")),
    Case("expert-parallel-above-the-gpus",
         tiny(model="mixtral-8x7b", deployment__tensor_parallel=2,
              deployment__expert_parallel=4),
         "deployment.expert_parallel", "4", ("the replica's 2 GPUs", "one of 1, 2")),
    Case("moe-tensor-parallel-not-dividing-the-expert-width",
         tiny(model=MOE_90, deployment__tensor_parallel=8, deployment__expert_parallel=2),
         "deployment.expert_parallel", "2", ("moe_tensor_parallel", "= 4", "width of 90",
                                              "one of 4, 8")),
    Case("tensor-parallel-alone-splitting-the-expert-width",
         tiny(model=MOE_90, deployment__tensor_parallel=8), "deployment.expert_parallel", "1",
         ("= 8", "one of 4, 8")),
    Case("plan-option-with-experts-on-a-dense-model",
         {**tiny(duration_s=10, warmup_s=1), "plan": {
             "periods": [{"name": "m1", "peak_rate_per_s": 5.0}], "target": {"draws": 2},
             "options": [{"name": "base"}, {"name": "ep", "deployment": {"expert_parallel": 2}}]}},
         "plan.options[1].deployment.expert_parallel", "2", ("dense model",), command="plan"),
    # ---- the weights do not fit a GPU of the layout ----------------------------------------
    Case("weights-over-each-attention-group",
         tiny(model="llama-3.1-70b", deployment__data_parallel_attention=4),
         "deployment.tensor_parallel", "1",
         ("needs 131.4 GiB per GPU", "data_parallel_attention 4", "(tensor_parallel 2)")),
    Case("runtime-reserve-above-the-utilisation",
         _deployment(gpu_memory_utilization=0.005), "deployment.gpu_memory_utilization",
         "0.005", ("h100-sxm × 0.005 = 0.4 GiB", "0.5 GiB NCCL and runtime reserve")),
]


@pytest.mark.parametrize("case", params(BAD))
def test_bad_layout_is_refused(case: Case, check_rejected: Callable[[Case], None]) -> None:
    check_rejected(case)


def test_layouts_engines_serve_load() -> None:
    """DeepSeek-style attention DP with experts spread, and FP4 weight-only on Hopper."""
    wide = sim.load_scenario(tiny(model="mixtral-8x7b", deployment__data_parallel_attention=8,
                                  deployment__expert_parallel=8, deployment__engine="sglang"))
    assert wide.gpus_per_replica == 8 and wide.layout.moe_tensor_parallel == 1
    fp4 = sim.load_scenario(tiny(model="mixtral-8x7b", deployment__tensor_parallel=2,
                                 deployment__dtype="fp4"))
    assert fp4.gpu.fp4_tflops is None and fp4.layout.kv_cache_dtype == "fp8"
