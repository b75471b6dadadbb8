"""How one replica lays a model out over its GPUs, and the number formats it serves in.

The step-time models and the memory model take a `Layout` rather than the scenario's
deployment block: it is the handful of values both need, resolved (`kv_cache_dtype: auto`
already turned into a format), so the two can never disagree about what a replica is.

A replica has `gpus = tensor_parallel × data_parallel_attention` GPUs. Attention and the
dense layers are split `tensor_parallel` ways inside each of `data_parallel_attention`
groups, which hold different sequences (DeepSeek-style attention data parallelism); the
routed experts of MoE layers are split `expert_parallel` ways, each expert's width a further
`moe_tensor_parallel = gpus / expert_parallel` ways. That is how vLLM, SGLang and
TensorRT-LLM describe a replica, and how the measured rows of AIConfigurator's
`silicon_sample.csv` name theirs (`tp_size`, `attention_dp_size`, `moe_tp_size`,
`moe_ep_size`).
"""

from __future__ import annotations

from dataclasses import dataclass

ENGINES = ("vllm", "sglang", "trtllm")  # whose operator tables (and behaviour) a replica uses
WEIGHT_DTYPES = ("bf16", "fp16", "fp8", "fp4")
KV_CACHE_DTYPES = ("bf16", "fp16", "fp8")


@dataclass(frozen=True)
class Layout:
    """One replica's parallelism, formats and engine (see the module's docstring)."""

    tensor_parallel: int = 1
    data_parallel_attention: int = 1
    expert_parallel: int = 1
    dtype: str = "bf16"  # the weights' format: one of WEIGHT_DTYPES
    kv_cache_dtype: str = "bf16"  # the KV cache's format: one of KV_CACHE_DTYPES
    engine: str = "vllm"  # one of ENGINES

    @property
    def gpus(self) -> int:
        """GPUs in one replica (what the cost model pays for)."""
        return self.tensor_parallel * self.data_parallel_attention

    @property
    def moe_tensor_parallel(self) -> int:
        """The ways each routed expert's width is split (1 when experts are spread whole)."""
        return self.gpus // self.expert_parallel


def resolve_kv_cache_dtype(kv_cache_dtype: str, dtype: str, checkpoint: str | None) -> str:
    """The cache format `kv_cache_dtype` stands for with weights in `dtype`; `checkpoint`:
    the model's `ModelSpec.kv_cache_dtype`.

    A checkpoint (a model read from its config.json) carries the format its engines choose
    under `auto`: vLLM, SGLang and TensorRT-LLM take the KV quantisation the checkpoint
    declares, else the model's 16-bit activation dtype, whatever the weights' format (an FP8
    checkpoint that declares nothing keeps a bf16 cache; NVIDIA's FP8 and NVFP4 checkpoints
    declare an FP8 one). A catalogue or inline model (`checkpoint` None) names an
    architecture in a format, not a checkpoint: `auto` keeps the cache in the weights' format
    where a cache can be (bf16, fp16, fp8) and in fp8 for fp4 weights, the cache the
    published FP8 and NVFP4 checkpoints declare and AIConfigurator assumes for them."""
    if kv_cache_dtype != "auto":
        return kv_cache_dtype
    if checkpoint is not None:
        return checkpoint
    return dtype if dtype in KV_CACHE_DTYPES else "fp8"
