"""The measurements file: provenance comment lines, then one CSV row per point.

This format is a contract (the profile fitter reads it); extend it, never rename:

    # tokenfactory-measurements v1
    # gpu: ...            (then driver, torch, cuda, date, model, tensor_parallel, dtype,
    # device: ...          device, source: one `# key: value` line each, in that order)
    op,tokens,batch,context_tokens,seconds,p10_s,p90_s,repeats

`seconds` is the median; columns that do not apply to an operator are empty. A file is
written whole or not at all (a temporary file, then a rename).
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

MAGIC = "# tokenfactory-measurements v1"
HEADER_KEYS = ("gpu", "driver", "torch", "cuda", "date", "model", "tensor_parallel", "dtype",
               "device", "source")
COLUMNS = ("op", "tokens", "batch", "context_tokens", "seconds", "p10_s", "p90_s", "repeats")


@dataclass(frozen=True)
class Row:
    op: str
    tokens: int | None
    batch: int | None
    context_tokens: int | None
    seconds: float
    p10_s: float
    p90_s: float
    repeats: int


def slug(text: str) -> str:
    """'NVIDIA H100 80GB HBM3' → 'nvidia-h100-80gb-hbm3': safe in a file name."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def file_name(gpu: str, model: str, tp: int) -> str:
    return f"{slug(gpu)}-{model}-tp{tp}.csv"


def render(header: dict[str, str], rows: list[Row]) -> str:
    missing = [key for key in HEADER_KEYS if key not in header]
    if missing:
        raise ValueError(f"measurement header lacks {missing}")
    out = io.StringIO()
    out.write(MAGIC + "\n")
    for key in HEADER_KEYS:
        value = str(header[key]).replace("\n", " ")
        out.write(f"# {key}: {value}\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow([r.op, _int(r.tokens), _int(r.batch), _int(r.context_tokens),
                         _float(r.seconds), _float(r.p10_s), _float(r.p90_s), r.repeats])
    return out.getvalue()


def write(path: Path, header: dict[str, str], rows: list[Row]) -> None:
    text = render(header, rows)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read(path: Path) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Header mapping and raw rows (strings): what a reader of this format starts from."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0] != MAGIC:
        raise ValueError(f"{path}: first line is not {MAGIC!r}")
    header: dict[str, str] = {}
    body_start = 1
    for body_start, line in enumerate(lines[1:], start=1):  # noqa: B007 - used after the loop
        if not line.startswith("# "):
            break
        key, _, value = line[2:].partition(":")
        header[key.strip()] = value.strip()
    rows = list(csv.DictReader(lines[body_start:]))
    return header, rows


def _int(value: int | None) -> str:
    return "" if value is None else str(value)


def _float(value: float) -> str:
    return f"{value:.6g}"
