"""Parameter counts of the published models' config.json files (../shared) against the totals
their makers publish, and their KV bytes per token by hand.

A count passes when it is within 1% of the published figure or rounds to it at the precision
it is published in (half a unit of its last digit: "37B" is 36.5B–37.5B), whichever is looser;
the rows where the second decides say so. Publishers differ on one thing: DeepSeek and OpenAI
count active parameters without the input embedding table (a lookup, no multiply), Meta,
Mistral and Qwen with it; each row compares in its publisher's convention.
"""

from __future__ import annotations

import json

import pytest
from builders import PUBLISHED

from sim.hardware.catalog import ModelSpec
from sim.hardware.hfconfig import model_from_config, model_name

CONFIGS = PUBLISHED / "aic" / "model_configs"
pytestmark = pytest.mark.skipif(not CONFIGS.is_dir(), reason=f"the published model configs "
                                f"are not at {CONFIGS} (they live in the shared data folder)")

# Llama-4's published totals include its vision encoder, which the shared config.json leaves
# out (no vision_config). From the upstream vision_config (hidden 1408, MLP 5632, 34 layers,
# patch 14, pixel-shuffle adapter to 4096, projector to 5120): 34 × (4 × 1408² + 2 × 1408 ×
# 5632) + 3 × 14² × 1408 + (5632 × 4096 + 4096²) + 4096 × 5120 ≈ 0.87B.
LLAMA4_VISION_PARAMS = (34 * (4 * 1408**2 + 2 * 1408 * 5632) + 3 * 14**2 * 1408
                        + 5632 * 4096 + 4096**2 + 4096 * 5120)


def published(file_stem: str) -> ModelSpec:
    path = CONFIGS / f"{file_stem}_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    return model_from_config(config, model_name(path.name), str(path))


def close(count: float, figure_b: float, digits: int) -> bool:
    """Within 1% of `figure_b` billions, or rounding to it at `digits` decimals."""
    billions = count / 1e9
    return abs(billions - figure_b) <= max(0.01 * figure_b, 0.5 * 10**-digits + 1e-9)


def without_embedding(m: ModelSpec) -> int:
    assert m.active_params is not None
    return m.active_params - m.vocab * m.hidden


# (config, published total B, its decimals, published active B, its decimals, active counted
#  without the embedding table, source)
ROWS = [
    # DeepSeek-V3 technical report (arXiv 2412.19437) and model card: "671B total parameters
    # with 37B activated for each token" (the 14B multi-token-prediction module apart). Ours:
    # 671.03B, 36.63B active without the embedding table (rounds to 37; −1.0%).
    ("deepseek-ai--DeepSeek-V3", 671, 0, 37, 0, True,
     "https://huggingface.co/deepseek-ai/DeepSeek-V3"),
    ("deepseek-ai--DeepSeek-R1", 671, 0, 37, 0, True,
     "https://huggingface.co/deepseek-ai/DeepSeek-R1"),
    # Qwen3 model cards: "235B in total and 22B activated", "30.5B in total and 3.3B
    # activated" (ours 3.353B: rounds to 3.4 at their precision, so the 2% row below).
    ("Qwen--Qwen3-235B-A22B", 235, 0, 22, 0, False,
     "https://huggingface.co/Qwen/Qwen3-235B-A22B"),
    ("Qwen--Qwen3-Coder-480B-A35B-Instruct", 480, 0, 35, 0, False,
     "https://huggingface.co/Qwen/Qwen3-Coder-480B-A35B-Instruct"),
    ("Qwen--Qwen3-32B", 32.8, 1, 32.8, 1, False, "https://huggingface.co/Qwen/Qwen3-32B"),
    ("Qwen--Qwen3-8B", 8.2, 1, 8.2, 1, False, "https://huggingface.co/Qwen/Qwen3-8B"),
    # gpt-oss model card (arXiv 2508.10925), table 1: 116.83B total, 5.13B active; 20.91B
    # total, 3.61B active (active parameters leave the embedding out).
    ("openai--gpt-oss-120b", 116.83, 2, 5.13, 2, True, "https://arxiv.org/abs/2508.10925"),
    ("openai--gpt-oss-20b", 20.91, 2, 3.61, 2, True, "https://arxiv.org/abs/2508.10925"),
    # Mixtral-8x22B announcement: "141B parameters … 39B active".
    ("mistralai--Mixtral-8x22B-v0.1", 141, 0, 39, 0, False,
     "https://mistral.ai/news/mixtral-8x22b"),
    # Qwen3.5 model cards: 397B total / 17B activated; 27B dense.
    ("Qwen--Qwen3.5-397B-A17B", 397, 0, 17, 0, False,
     "https://huggingface.co/Qwen/Qwen3.5-397B-A17B"),
    ("Qwen--Qwen3.5-27B", 27, 0, 27, 0, False, "https://huggingface.co/Qwen/Qwen3.5-27B"),
]


@pytest.mark.parametrize(("stem", "total_b", "total_digits", "active_b", "active_digits",
                          "no_embedding", "source"), ROWS, ids=[row[0] for row in ROWS])
def test_counts_match_the_published_totals(stem: str, total_b: float, total_digits: int,
                                           active_b: float, active_digits: int,
                                           no_embedding: bool, source: str) -> None:
    m = published(stem)
    assert m.params is not None and m.active_params is not None
    active = without_embedding(m) if no_embedding else m.active_params
    assert close(m.params, total_b, total_digits), (m.params, total_b, source)
    assert close(active, active_b, active_digits), (active, active_b, source)


def test_qwen3_30b_a3b() -> None:
    # Model card: "30.5B in total and 3.3B activated"
    # (https://huggingface.co/Qwen/Qwen3-30B-A3B). Ours 30.53B / 3.353B: every weight of
    # the architecture counted; the card's 3.3 is 1.6% under (a figure rounded down).
    m = published("Qwen--Qwen3-30B-A3B")
    assert m.params == pytest.approx(30.5e9, rel=0.01)
    assert m.active_params == pytest.approx(3.3e9, rel=0.02)


@pytest.mark.parametrize(("stem", "total_b", "active_b"), [
    # Llama-4 model card: Maverick "17B active, 400B total", Scout "17B active, 109B total"
    # (https://huggingface.co/meta-llama/Llama-4-Scout-17B-16E-Instruct); with the vision
    # encoder (see LLAMA4_VISION_PARAMS), which the totals include.
    ("meta-llama--Llama-4-Maverick-17B-128E-Instruct", 400, 17),
    ("meta-llama--Llama-4-Scout-17B-16E-Instruct", 109, 17),
])
def test_llama4_counts_with_the_vision_encoder(stem: str, total_b: float,
                                               active_b: float) -> None:
    m = published(stem)
    assert m.params is not None and m.active_params is not None
    assert (m.params + LLAMA4_VISION_PARAMS) / 1e9 == pytest.approx(total_b, rel=0.01)
    assert close(m.active_params, active_b, 0)


def test_published_kv_bytes_per_token_by_hand() -> None:
    # DeepSeek-V3, MLA: (kv_lora_rank 512 + qk_rope_head_dim 64) × 61 layers × 2 bytes.
    assert published("deepseek-ai--DeepSeek-V3").kv_bytes_per_token(2.0) == 576 * 61 * 2
    # gpt-oss-120b: 18 of its 36 layers full attention, 2 × 8 KV heads × 64 dims × 2 bytes
    # each; the other 18 hold at most 128 tokens.
    oss = published("openai--gpt-oss-120b")
    assert oss.kv_bytes_per_token(2.0) == 18 * 2 * 8 * 64 * 2
    assert oss.kv_bytes_per_sequence(10_000, 2.0) == 18 * 2048 * 10_000 + 18 * 2048 * 128
    # Qwen3.5-397B-A17B: 15 of 60 layers full attention, 2 × 2 KV heads × 256 × 2 bytes;
    # 45 gated-delta-rule layers of 64 value heads × 128 × 128 fp32 state plus the conv's
    # last 3 inputs of 2 × 16 × 128 + 64 × 128 channels in 16 bits.
    qwen = published("Qwen--Qwen3.5-397B-A17B")
    assert qwen.kv_bytes_per_token(2.0) == 15 * 2 * 2 * 256 * 2
    assert qwen.state_bytes_per_sequence == 45 * (64 * 128 * 128 * 4
                                                 + 3 * (2 * 16 * 128 + 64 * 128) * 2)
    # Llama-4-Scout under text_config: 2 × 48 layers × 8 KV heads × 128 × 2 bytes.
    scout = published("meta-llama--Llama-4-Scout-17B-16E-Instruct")
    assert scout.kv_bytes_per_token(2.0) == 2 * 48 * 8 * 128 * 2


def test_every_shipped_config_is_read_or_refused_by_name() -> None:
    from sim.errors import InputError

    read, refused = 0, 0
    for path in sorted(CONFIGS.glob("*_config.json")):
        if path.name.endswith("_hf_quant_config.json"):
            continue
        try:
            published(path.name.removesuffix("_config.json"))
            read += 1
        except InputError as exc:
            assert "supported architecture" in exc.expected, (path.name, exc)
            refused += 1
    assert read >= 40, (read, refused)


def test_catalogue_models_agree_with_their_configs() -> None:
    from sim.hardware import catalog

    for stem, key in (("meta-llama--Meta-Llama-3.1-8B", "llama-3.1-8b"),
                      ("meta-llama--Meta-Llama-3.1-70B", "llama-3.1-70b"),
                      ("mistralai--Mixtral-8x7B-v0.1", "mixtral-8x7b")):
        m, known = published(stem), catalog.models()[key]
        assert (m.params, m.active_params) == (known.params, known.active_params)
        assert m.kv_bytes_per_token(2.0) == known.kv_bytes_per_token(2.0)

