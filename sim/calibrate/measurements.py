"""Operator timing measurements: the CSV the harness writes and the profile fitter reads.

Format (``tokenfactory-measurements v1``): ``# key: value`` header lines carrying provenance
(gpu, driver, torch, cuda, date, model, tensor_parallel, dtype, device, source), then a CSV
table ``op,tokens,batch,context_tokens,seconds,p10_s,p90_s,repeats`` with one row per
measured point; `seconds` is the median. Operators:

* ``layer_linear`` — every non-attention operator of one decoder layer for `tokens` tokens
  (plus per-operator detail rows ``qkv_proj``, ``o_proj``, ``gate_up_proj``, ``down_proj``, …)
* ``lm_head`` — the logits GEMM for `tokens` rows
* ``attn_prefill`` — causal attention of `tokens` new tokens over `context_tokens` prior ones
* ``attn_decode`` — one decode step of `batch` sequences holding `context_tokens` KV tokens
* ``all_reduce`` — one all-reduce of `tokens` × hidden activations across the TP group
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sim.errors import InputError

MAGIC = "tokenfactory-measurements v1"
COLUMNS = ("op", "tokens", "batch", "context_tokens", "seconds", "p10_s", "p90_s", "repeats")
OPS = ("layer_linear", "qkv_proj", "o_proj", "gate_up_proj", "down_proj", "rms_norm", "act",
       "rope", "add", "lm_head", "attn_prefill", "attn_decode", "all_reduce")
REQUIRED_HEADER = ("gpu", "model", "tensor_parallel", "dtype", "source")


@dataclass
class Measurements:
    """One (GPU, model, tensor parallel, dtype) set of operator timings."""

    header: dict[str, str]
    op: np.ndarray  # str
    tokens: np.ndarray  # float, NaN where not applicable
    batch: np.ndarray
    context_tokens: np.ndarray
    seconds: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def select(self, op: str) -> np.ndarray:
        return self.op == op

    @property
    def tensor_parallel(self) -> int:
        return int(self.header["tensor_parallel"])


def read_measurements(path: Path) -> Measurements:
    """Parse and check a measurements file; `InputError` names the file, line and column."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(str(path), "no such file", "a measurements CSV file") from None
    except (OSError, UnicodeDecodeError):
        raise InputError(str(path), "unreadable", "a UTF-8 measurements CSV file") from None
    return parse_measurements(text, str(path))


def parse_measurements(text: str, name: str) -> Measurements:
    lines = text.splitlines()
    header: dict[str, str] = {}
    first_data = 0
    for number, line in enumerate(lines, start=1):
        if not line.startswith("#"):
            first_data = number - 1
            break
        body = line[1:].strip()
        if number == 1:
            if body != MAGIC:
                raise InputError(f"{name}:1", body, f"the first line '# {MAGIC}'")
            continue
        key, sep, value = body.partition(":")
        if not sep:
            raise InputError(f"{name}:{number}", body, "a '# key: value' provenance line")
        header[key.strip()] = value.strip()
    else:
        first_data = len(lines)
    if not lines:
        raise InputError(name, "empty file", f"'# {MAGIC}' and a table of measurements")
    for key in REQUIRED_HEADER:
        if not header.get(key):
            raise InputError(f"{name}: header", f"no '{key}'", f"a '# {key}: …' line")
    if not header["tensor_parallel"].isdigit() or int(header["tensor_parallel"]) < 1:
        raise InputError(f"{name}: header tensor_parallel", header["tensor_parallel"],
                         "an integer ≥ 1")
    reader = csv.reader(io.StringIO("\n".join(lines[first_data:])))
    columns = next(reader, None)
    if columns is None or tuple(c.strip() for c in columns) != COLUMNS:
        raise InputError(f"{name}:{first_data + 1}", columns, "the columns " + ",".join(COLUMNS))
    ops, numbers = [], []
    for offset, row in enumerate(reader, start=first_data + 2):
        if not row:
            continue
        if len(row) != len(COLUMNS):
            raise InputError(f"{name}:{offset}", ",".join(row), f"{len(COLUMNS)} fields")
        if row[0] not in OPS:
            raise InputError(f"{name}:{offset} column op", row[0], "one of " + ", ".join(OPS))
        ops.append(row[0])
        numbers.append([_number(cell, name, offset, col) for col, cell in zip(
            COLUMNS[1:], row[1:], strict=True)])
    if not ops:
        raise InputError(name, "no measurement rows", "at least one row under the column line")
    table = np.array(numbers, dtype=np.float64)
    seconds = table[:, 3]
    bad = np.flatnonzero(~(seconds > 0))
    if bad.size:
        line_no = first_data + 2 + int(bad[0])
        raise InputError(f"{name}:{line_no} column seconds", seconds[bad[0]], "a time > 0")
    return Measurements(header=header, op=np.array(ops), tokens=table[:, 0], batch=table[:, 1],
                        context_tokens=table[:, 2], seconds=seconds,
                        extra={"p10_s": table[:, 4], "p90_s": table[:, 5], "repeats": table[:, 6]})


def _number(cell: str, name: str, line: int, column: str) -> float:
    cell = cell.strip()
    if not cell:
        return math.nan
    try:
        value = float(cell)
    except ValueError:
        raise InputError(f"{name}:{line} column {column}", cell, "a number or nothing") from None
    if not math.isfinite(value) or value < 0:
        raise InputError(f"{name}:{line} column {column}", cell, "a finite number ≥ 0")
    return value


def format_measurements(m: Measurements) -> str:
    """The CSV text for `m` (used by importers that build measurements in memory)."""
    out = io.StringIO()
    out.write(f"# {MAGIC}\n")
    for key, value in m.header.items():
        out.write(f"# {key}: {value}\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    p10, p90, repeats = (m.extra.get(k, np.full(len(m.op), np.nan))
                         for k in ("p10_s", "p90_s", "repeats"))
    for i in range(len(m.op)):
        values = (m.tokens[i], m.batch[i], m.context_tokens[i], m.seconds[i], p10[i], p90[i],
                  repeats[i])
        writer.writerow([m.op[i], *("" if math.isnan(v) else f"{v:.9g}" for v in values)])
    return out.getvalue()
