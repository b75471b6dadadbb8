"""What `tokenfactory catalog` prints: the GPUs with their peak figures (a dash: no tensor
cores for that format) and the models with their size and KV-cache bytes per token (text
only; the CLI decides where it goes)."""

from __future__ import annotations

from sim.hardware.catalog import GpuSpec, ModelSpec
from sim.report.text import Column, or_dash, printable, table

GPU_COLUMNS = (Column("gpu", "<", 12), Column("memory GiB", ">", 11),
               Column("HBM TB/s", ">", 10), Column("BF16 TFLOPS", ">", 13),
               Column("FP8 TFLOPS", ">", 12), Column("FP4 TFLOPS", ">", 12),
               Column("name", "<", 0, gap=2))
MODEL_COLUMNS = (Column("model", "<"), Column("params B", ">", 10),
                 Column("active B", ">", 10), Column("layers", ">", 8),
                 Column("KV KiB/token", ">", 14), Column("attention", "<", gap=2),
                 Column("name", "<", 0, gap=2))


def format_gpus(gpus: dict[str, GpuSpec]) -> str:
    cells = [[name, f"{g.memory_gib:g}", f"{g.memory_bandwidth_tb_s:g}", f"{g.bf16_tflops:,.0f}",
              or_dash(g.fp8_tflops, ",.0f"), or_dash(g.fp4_tflops, ",.0f"), g.display_name]
             for name, g in gpus.items()]
    return "\n".join(table(GPU_COLUMNS, cells, gap=0))


def format_models(models: dict[str, ModelSpec], skipped: dict[str, str] | None = None) -> str:
    """KV cache per token counted at 2 bytes per element (a 16-bit cache), for the layers
    that keep every token; the attention column says what else a sequence holds (a window's
    tokens, a linear-attention state). `skipped`: files that gave no model, and why."""
    cells = [[name, f"{_billions(m.params)}", f"{_billions(m.active_params)}", str(m.layers),
              f"{m.kv_bytes_per_token(2.0) / 1024:.0f}", _attention(m), m.display_name]
             for name, m in models.items()]
    lines = table(MODEL_COLUMNS, cells, gap=0)
    lines += [f"skipped {printable(file)}: {printable(why)}"
              for file, why in (skipped or {}).items()]
    return "\n".join(lines)


def _attention(m: ModelSpec) -> str:
    """The attention kind, with the window's size and the per-sequence state where any."""
    parts = [m.attention_kind]
    if m.sliding_layers:
        parts.append(f"{m.sliding_layers} layers × {m.sliding_window:,} tokens")
    if m.linear_layers:
        parts.append(f"{m.state_bytes_per_sequence / 2**20:,.0f} MiB state/seq")
    return ", ".join(parts)


def _billions(count: int | None) -> str:
    # ModelSpec's validator counts the parameters when a model does not state them.
    assert count is not None
    return f"{count / 1e9:.1f}"
