"""A Hugging Face `config.json` (already parsed) → a `ModelSpec`.

Model configs name the same thing many ways: experts are `num_local_experts` (Mixtral,
gpt-oss, Llama-4), `n_routed_experts` (DeepSeek) or `num_experts` (Qwen); vision-language
and Llama-4 configs nest the decoder under `text_config`. Each architecture family gets one
small function turning its keys into ModelSpec fields; the keys every decoder shares are read
once (`_common`). A family not listed in `FAMILIES` is refused by name rather than guessed:
a DeepSeek-V4 read as DeepSeek-V3 would size its memory wrong without a word.

Older architectures (GPT-J, Falcon) name even the common keys GPT-2's way (`n_embd`,
`n_layer`); they are renamed to Llama's first, as the Hugging Face config classes'
`attribute_map` does (`_RENAMES`).

Which blocks a quantised checkpoint keeps in 16 bits comes from its quantisation lists:
`quantization_config.modules_to_not_convert` (gpt-oss, Qwen FP8) or `ignore` (compressed
tensors), and NVIDIA ModelOpt's `quantization.exclude_modules` in the `*_hf_quant_config.json`
beside the config (`QUANT_CONFIG_SUFFIX`; the caller reads it and passes it on). Module names
are sorted into `catalog.Block`s by the words in them (`_BLOCK_WORDS`); a block named for any
layer counts for all of them (the shipped lists name a block in every layer or in none).

The checkpoint's KV cache format under `kv_cache_dtype: auto` (`kv_cache_dtype`) is what
vLLM, SGLang and TensorRT-LLM choose there: the KV quantisation the checkpoint declares
(ModelOpt's `kv_cache_quant_algo`, in the `*_hf_quant_config.json` or in
`quantization_config`; a `kv_cache_scheme` of 8-bit floats, as compressed tensors and
ModelOpt's config.json exports write it), else the model's 16-bit activation dtype
(`torch_dtype`), whatever the weights' format: Qwen3-FP8 and DeepSeek-R1 (FP8 weights)
declare nothing and keep a bf16 cache, as gpt-oss (MXFP4) does.

Reading the files is the caller's job (the scenario loader, the catalogue command); this
module only maps mappings, so it is the same for both.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from sim.errors import InputError
from sim.hardware.catalog import ModelSpec

Config = Mapping[str, Any]
CONFIG_SUFFIX = "_config.json"
QUANT_CONFIG_SUFFIX = "_hf_quant_config.json"  # ModelOpt's settings beside a config.json


def quant_config_name(file_name: str) -> str:
    """`org--name_config.json` → the `org--name_hf_quant_config.json` that may sit beside it."""
    return file_name.removesuffix(CONFIG_SUFFIX) + QUANT_CONFIG_SUFFIX


def model_name(file_name: str) -> str:
    """`org--name_config.json` → `name`, lower case (the hub's repository name)."""
    return display_name(file_name).lower()


def display_name(file_name: str) -> str:
    """`org--Name_config.json` → `Name`, as the hub spells it."""
    stem = file_name.removesuffix(CONFIG_SUFFIX).removesuffix(".json")
    return stem.split("--", 1)[-1]


def model_from_config(config: Config, name: str, where: str, display: str = "",
                      quant_config: Config | None = None) -> ModelSpec:
    """The decoder `config` describes; `InputError` naming `where` when its architecture is
    not one of `FAMILIES` or its numbers cannot be a model. `quant_config`: the checkpoint's
    `*_hf_quant_config.json`, when one sits beside the config."""
    text = config.get("text_config")
    text = text if isinstance(text, Mapping) else config
    kind = text.get("model_type", config.get("model_type"))
    family = FAMILIES.get(kind) if isinstance(kind, str) else None
    if family is None:
        raise InputError(where, f"model_type {kind!r}", "a config.json of a supported "
                         f"architecture (model_type one of {', '.join(sorted(FAMILIES))})")
    assert isinstance(kind, str)  # a key of FAMILIES
    text = _llama_names(text, kind)
    try:
        fields = {**_common(config, text), **family(text),
                  "unquantised": unquantised_blocks(config, text, quant_config),
                  "kv_cache_dtype": kv_cache_dtype(config, text, quant_config)}
    except KeyError as exc:
        raise InputError(where, f"{name}: no {exc.args[0]!r}", "a config.json with the keys "
                         f"of its architecture ({kind})") from None
    try:
        return ModelSpec(name=name, display_name=display, **fields)
    except ValidationError as exc:
        raise _impossible(exc, fields, name, where) from None


def _impossible(exc: ValidationError, fields: dict[str, Any], name: str,
                where: str) -> InputError:
    """The first number that cannot be, named as the config names it."""
    error = exc.errors()[0]
    ctx = error.get("ctx") or {}
    field = str(ctx.get("field") or ".".join(str(part) for part in error["loc"]))
    key = f"{field} ({_HF_KEYS[field]})" if field in _HF_KEYS else field
    return InputError(where, f"{name}: {key} = {fields.get(field)!r}",
                      f"a config.json describing a possible model: "
                      f"{ctx.get('expected') or error['msg']}")


# ModelSpec field → the config.json key it is read from (for messages).
_HF_KEYS = {"layers": "num_hidden_layers", "hidden": "hidden_size",
            "ffn_intermediate": "intermediate_size", "heads": "num_attention_heads",
            "kv_heads": "num_key_value_heads", "vocab": "vocab_size",
            "max_context": "max_position_embeddings", "experts_per_token": "num_experts_per_tok"}


# Older configs' key → Llama's name (the config classes' attribute_map), and the class
# defaults a config.json may leave out (FalconConfig: 2,048 positions).
_RENAMES = {
    "gptj": {"n_embd": "hidden_size", "n_layer": "num_hidden_layers",
             "n_head": "num_attention_heads", "n_positions": "max_position_embeddings"},
    "falcon": {"n_layer": "num_hidden_layers", "n_head": "num_attention_heads",
               "n_head_kv": "num_kv_heads"},
}
_DEFAULTS = {"falcon": {"max_position_embeddings": 2048}}


def _llama_names(text: Config, kind: str) -> Config:
    renames = _RENAMES.get(kind, {})
    return {**_DEFAULTS.get(kind, {}), **{renames.get(k, k): v for k, v in text.items()}}


def _first(config: Config, *keys: str, default: Any = None) -> Any:
    """The value of the first of `keys` present and not null."""
    return next((config[k] for k in keys if config.get(k) is not None), default)


def _common(config: Config, text: Config) -> dict[str, Any]:
    """The keys every decoder config shares (Llama's names)."""
    heads = text["num_attention_heads"]
    tied = _first(text, "tie_word_embeddings", default=config.get("tie_word_embeddings"))
    fields = {
        "layers": text["num_hidden_layers"], "hidden": text["hidden_size"],
        "ffn_intermediate": _first(text, "intermediate_size", "moe_intermediate_size"),
        "heads": heads,
        "kv_heads": _first(text, "num_key_value_heads", default=heads),
        "head_dim": text.get("head_dim"), "vocab": text["vocab_size"],
        "max_context": text["max_position_embeddings"], "tied_embeddings": bool(tied),
        "qkv_bias": bool(text.get("attention_bias", False)),
        "weights_dtype": _weights_dtype(_first(text, "quantization_config",
                                               default=config.get("quantization_config"))),
    }
    return fields | _layer_kinds(text)


def _weights_dtype(quantization: Any) -> str:
    """The checkpoint's weight format from `quantization_config` ("" when unquantised)."""
    if not isinstance(quantization, Mapping):
        return ""
    method = str(quantization.get("quant_method", ""))
    algo = quantization.get("quant_algo")
    return str(algo).lower() if method == "modelopt" and algo else method.lower()


# Words in a quantisation list's module names → the block they keep 16-bit, first match wins
# (a shared expert's gate is a shared-expert weight, `mlp.gate` alone is the router).
_BLOCK_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (r"shared_expert", ("shared_experts",)),
    (r"(\.mlp|block_sparse_moe)\.(gate|router)\b(?!_)|\.router\b", ("router",)),
    (r"experts", ("routed_experts",)),
    (r"(self_attn|\.attn|linear_attn|attention)\.?\*?$", ("attention", "attention_output")),
    (r"(self_attn|\.attn|linear_attn|attention)\.(o_proj|out_proj|dense)\b",
     ("attention_output",)),
    (r"(self_attn|\.attn|linear_attn|attention)\.", ("attention",)),
    (r"\.mlp\b", ("dense_mlp",)),
)


# A declared KV quantisation → the cache format it stands for (those the simulator models).
_KV_FORMATS = {"fp8": "fp8"}


def kv_cache_dtype(config: Config, text: Config, quant_config: Config | None) -> str:
    """The checkpoint's KV cache format under `kv_cache_dtype: auto` (module docstring). A
    declared format the simulator does not model (an INT8 or NVFP4 cache) counts as none:
    vLLM and SGLang then fall back to the model's dtype too (TensorRT-LLM would use it)."""
    settings = [_first(text, "quantization_config", default=config.get("quantization_config")),
                (quant_config or {}).get("quantization")]
    for found in settings:
        declared = _declared_kv(found) if isinstance(found, Mapping) else None
        if declared in _KV_FORMATS:
            return _KV_FORMATS[declared]
    activations = _first(text, "torch_dtype", "dtype",
                         default=_first(config, "torch_dtype", "dtype"))
    return "fp16" if activations == "float16" else "bf16"


def _declared_kv(settings: Config) -> str | None:
    """`kv_cache_quant_algo: FP8` (ModelOpt), or a `kv_cache_scheme` naming a format or
    giving 8-bit floats (`{num_bits: 8, type: float}`), lower case; None when neither."""
    algo = settings.get("kv_cache_quant_algo") or settings.get("kv_cache_scheme")
    if isinstance(algo, Mapping):
        eight_bit_float = algo.get("num_bits") == 8 and algo.get("type") == "float"
        return "fp8" if eight_bit_float else None
    return algo.lower() if isinstance(algo, str) else None


def unquantised_blocks(config: Config, text: Config, quant_config: Config | None) -> list[str]:
    """The blocks the checkpoint's quantisation lists keep 16-bit (module docstring)."""
    lists: list[Any] = []
    for settings in (_first(text, "quantization_config",
                            default=config.get("quantization_config")),
                     (quant_config or {}).get("quantization")):
        if isinstance(settings, Mapping):
            lists += [settings.get(key) for key in ("modules_to_not_convert", "ignore",
                                                    "exclude_modules")]
    names = [str(n) for found in lists if isinstance(found, list) for n in found]
    return sorted(_blocks(names)) if _quantised(config, text, quant_config) else []


def _quantised(config: Config, text: Config, quant_config: Config | None) -> bool:
    return bool(quant_config) or isinstance(
        _first(text, "quantization_config", default=config.get("quantization_config")),
        Mapping)


def _blocks(names: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for module in names:
        for pattern, blocks in _BLOCK_WORDS:
            if re.search(pattern, module):
                found.update(blocks)
                break
    return found


def _layer_kinds(text: Config) -> dict[str, Any]:
    """Sliding-window and linear-attention layer counts, from `layer_types` (gpt-oss, Qwen3.5)
    or, for configs without it, Qwen3-Next's `full_attention_interval`."""
    types = text.get("layer_types")
    if isinstance(types, list):
        sliding, linear = types.count("sliding_attention"), types.count("linear_attention")
    elif "linear_num_value_heads" in text:
        linear = text["num_hidden_layers"] - text["num_hidden_layers"] // text[
            "full_attention_interval"]
        sliding = 0
    else:
        sliding, linear = 0, 0
    fields: dict[str, Any] = {"sliding_layers": sliding, "linear_layers": linear}
    if sliding:
        fields["sliding_window"] = text["sliding_window"]
    if linear:
        fields |= {"linear_key_heads": text["linear_num_key_heads"],
                   "linear_value_heads": text["linear_num_value_heads"],
                   "linear_key_head_dim": text["linear_key_head_dim"],
                   "linear_value_head_dim": text["linear_value_head_dim"],
                   "linear_conv_kernel": text.get("linear_conv_kernel_dim", 4)}
    return fields


def _dense(text: Config) -> dict[str, Any]:
    """Llama, Mistral, Qwen2/Qwen3, MiMo: nothing beyond the common keys (Mistral's
    sliding window, where set, covers every layer)."""
    window = text.get("sliding_window") if text.get("model_type") == "mistral" else None
    return {"sliding_window": window, "sliding_layers": text["num_hidden_layers"]} if window \
        else {}


def _qwen2(text: Config) -> dict[str, Any]:
    """Qwen2 (and MiMo, built on it) always have q/k/v biases; the config has no key."""
    return {"qkv_bias": True}


def _moe(text: Config) -> dict[str, Any]:
    """Mixtral, Qwen2/3-MoE, MiniMax-M2, gpt-oss: routed experts on every (or every n-th)
    layer, a shared expert where the config gives its width, the rest dense."""
    fields: dict[str, Any] = {
        "experts": _first(text, "num_local_experts", "n_routed_experts", "num_experts"),
        "experts_per_token": _first(text, "num_experts_per_tok", "experts_per_token",
                                    "top_k_experts"),
        "moe_layer_step": _first(text, "decoder_sparse_step", default=1),
        "dense_layers": len(text.get("mlp_only_layers") or ()),
    }
    if "moe_intermediate_size" in text:
        fields["ffn_intermediate"] = text["moe_intermediate_size"]
        fields["dense_ffn_intermediate"] = text.get("intermediate_size")
    shared = _first(text, "shared_expert_intermediate_size", "shared_intermediate_size",
                    default=0)
    if shared:
        fields |= {"shared_experts": 1, "shared_expert_intermediate": shared}
    return fields


def _deepseek(text: Config) -> dict[str, Any]:
    """DeepSeek-V2/V3/R1/V3.2, Kimi-K2: MLA attention, shared experts, leading dense layers.
    The multi-token-prediction layer (num_nextn_predict_layers) is not counted, as in the
    published totals (671B for V3)."""
    step = text.get("moe_layer_freq", 1)
    return {
        **_moe(text),
        "moe_layer_step": step if isinstance(step, int) else 1,
        "dense_layers": text.get("first_k_dense_replace", 0),
        "shared_experts": text.get("n_shared_experts") or 0,
        "shared_expert_intermediate": None,
        "q_lora_rank": text.get("q_lora_rank"), "kv_lora_rank": text["kv_lora_rank"],
        "qk_nope_head_dim": text["qk_nope_head_dim"],
        "qk_rope_head_dim": text["qk_rope_head_dim"], "v_head_dim": text["v_head_dim"],
        "head_dim": text["qk_nope_head_dim"] + text["qk_rope_head_dim"],
    }


def _llama4(text: Config) -> dict[str, Any]:
    """Llama-4: every n-th layer MoE (Maverick 2, Scout 1) with one shared expert as wide
    as a routed one; the other layers dense at intermediate_size_mlp. Its chunked local
    attention is counted as full attention (an upper bound on the cache)."""
    return {
        "experts": text["num_local_experts"], "experts_per_token": text["num_experts_per_tok"],
        "moe_layer_step": text.get("interleave_moe_layer_step", 1),
        "shared_experts": 1, "dense_ffn_intermediate": text.get("intermediate_size_mlp"),
    }


def _qwen3_5(text: Config) -> dict[str, Any]:
    """Qwen3-Next/Qwen3.5: hybrid linear attention, gated output, MoE in the -A variants."""
    moe = _moe(text) if "num_experts" in text else {}
    return {**moe, "attn_output_gate": bool(text.get("attn_output_gate", False))}


def _gptj(text: Config) -> dict[str, Any]:
    """GPT-J: attention and a 2-matrix GELU MLP (n_inner wide, 4 × hidden when null) side
    by side on one shared LayerNorm. Its partial rotary embedding (rotary_dim of each head)
    changes no weight, cache or GEMM shape; the MLP and lm_head biases are not counted."""
    return {"ffn_intermediate": text.get("n_inner") or 4 * text["hidden_size"],
            "parallel_attention": True, "mlp_gated": False, "layer_norms": 1,
            "norm_bias": True}


def _falcon(text: Config) -> dict[str, Any]:
    """Falcon: a 2-matrix GELU MLP (ffn_hidden_size, 4 × hidden by default) beside the
    attention. The new decoder architecture (40B, 180B) has num_kv_heads grouped key-value
    heads and two LayerNorms (ln_attn, ln_mlp) of the same input; the old one (7B)
    multi-query attention (one key-value head) and one LayerNorm when parallel_attn."""
    heads = text["num_attention_heads"]
    new = bool(text.get("new_decoder_architecture", False))
    parallel = new or bool(text.get("parallel_attn", True))
    if new:
        kv_heads = text.get("num_kv_heads") or heads
    else:
        kv_heads = 1 if text.get("multi_query", True) else heads
    return {"kv_heads": kv_heads,
            "ffn_intermediate": text.get("ffn_hidden_size") or 4 * text["hidden_size"],
            "qkv_bias": bool(text.get("bias", False)), "parallel_attention": parallel,
            "mlp_gated": False, "layer_norms": 2 if new or not parallel else 1,
            "norm_bias": True}


# model_type (of the decoder, `text_config` when nested) → its family's mapping.
FAMILIES: dict[str, Callable[[Config], dict[str, Any]]] = {
    "llama": _dense, "mistral": _dense, "qwen3": _dense, "qwen3_vl_text": _dense,
    "qwen2": _qwen2, "mimo": _qwen2,
    "mixtral": _moe, "qwen2_moe": _moe, "qwen3_moe": _moe, "qwen3_vl_moe_text": _moe,
    "minimax_m2": _moe, "gpt_oss": _moe,
    "deepseek_v2": _deepseek, "deepseek_v3": _deepseek, "deepseek_v32": _deepseek,
    "kimi_k2": _deepseek,
    "llama4_text": _llama4,
    "qwen3_next": _qwen3_5, "qwen3_5_text": _qwen3_5, "qwen3_5_moe_text": _qwen3_5,
    "gptj": _gptj, "falcon": _falcon,
}
