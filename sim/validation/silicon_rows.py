"""Reading measured end-to-end rows in the CSV format of AIConfigurator's `silicon_sample.csv`.

Each row is one deployment measured on real GPUs: a model, a GPU (`system`), an engine
(`backend`), its quantisation, ISL/OSL, the closed-loop concurrency, the parallelism, and the
measured TTFT and TPOT in milliseconds; a disaggregated row (`mode: disagg`) states each
pool's parallelism, batch and worker count in `prefill_*` and `decode_*` columns, optional in
a file of aggregated rows only. Only the *structure* is checked here: the columns the
simulator reads are present, numbers are numbers and ids are unique — a file that fails is bad
input (exit 2, naming the line and column). Whether a well-formed row can be simulated (a
disaggregated row, a pipeline-parallel one) is decided row by row in `sim.validation.silicon`,
which skips it with the reason rather than rejecting the file.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

from sim.errors import InputError

TTFT_COLUMN = "silicon_ttft_ms"
TPOT_COLUMN = "silicon_tpot_ms"
TEXT_COLUMNS = ("id", "backend", "model_path", "system", "mode", "gemm_quant_mode",
                "moe_quant_mode")
COUNT_COLUMNS = ("isl", "osl", "batch_size", "tp_size", "pp_size", "attention_dp_size",
                 "moe_tp_size", "moe_ep_size")
MEASURED_COLUMNS = (TTFT_COLUMN, TPOT_COLUMN)
REQUIRED_COLUMNS = (*TEXT_COLUMNS, *COUNT_COLUMNS, *MEASURED_COLUMNS)
POOLS = ("prefill", "decode")  # a disaggregated row's column prefixes, one per pool
POOL_FIELDS = ("batch_size", "num_workers", "tp_size", "pp_size", "attention_dp_size",
               "moe_tp_size", "moe_ep_size")
POOL_COLUMNS = tuple(f"{pool}_{name}" for pool in POOLS for name in POOL_FIELDS)
# The benchmark's own record of its concurrency, where the optional `silicon_data_source`
# column states it: with attention data parallelism, `batch_size` is one rank's batch and
# the clients number batch_size × attention_dp_size (134 of the shared file's 2,680 rows).
SOURCE_COLUMN = "silicon_data_source"
SOURCE_CONCURRENCY = re.compile(r"(?:^|;)\s*silicon_concurrency=(\d+)\s*(?:;|$)")
FORMAT = ("a CSV with a header naming " + ", ".join(REQUIRED_COLUMNS)
          + " (the format of silicon_sample.csv)")


@dataclass(frozen=True)
class PoolColumns:
    """One pool's columns: a disaggregated row's `prefill_*` or `decode_*` (None: empty or
    not in the file), or an aggregated row's own (`SiliconRow.aggregated`)."""

    batch_size: int | None = None  # one attention-DP rank's batch limit
    num_workers: int | None = None  # the pool's replicas
    tp_size: int | None = None
    pp_size: int | None = None
    attention_dp_size: int | None = None
    moe_tp_size: int | None = None
    moe_ep_size: int | None = None


@dataclass(frozen=True)
class SiliconRow:
    """One measured row; a count or a measurement the file leaves empty is None."""

    line: int  # in the file, for messages
    id: str
    backend: str
    model_path: str
    system: str
    mode: str
    gemm_quant_mode: str
    moe_quant_mode: str
    isl: int | None
    osl: int | None
    batch_size: int | None  # the benchmark's closed-loop concurrency
    tp_size: int | None
    pp_size: int | None
    attention_dp_size: int | None
    moe_tp_size: int | None
    moe_ep_size: int | None
    ttft_ms: float | None
    tpot_ms: float | None
    concurrency: int | None  # the benchmark's clients: silicon_concurrency, else batch_size
    prefill: PoolColumns = PoolColumns()
    decode: PoolColumns = PoolColumns()

    @property
    def aggregated(self) -> PoolColumns:
        """The row's own parallelism columns, in the shape of a pool's."""
        return PoolColumns(self.batch_size, None, self.tp_size, self.pp_size,
                           self.attention_dp_size, self.moe_tp_size, self.moe_ep_size)


@dataclass(frozen=True)
class SiliconTable:
    path: Path
    rows: tuple[SiliconRow, ...]


def is_silicon_header(columns: list[str]) -> bool:
    """Whether a CSV header is this format's: it names both measured latencies."""
    return TTFT_COLUMN in columns and TPOT_COLUMN in columns


def read_silicon(path: Path, text: str) -> SiliconTable:
    """Every row of the file (`text` is its content), checked as the module says."""
    reader = csv.reader(text.splitlines(keepends=True))
    header = next(reader, [])
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise InputError(f"{path}: line 1", ", ".join(missing) + " missing", FORMAT)
    index = {name: header.index(name) for name in REQUIRED_COLUMNS}
    index |= {name: header.index(name) for name in POOL_COLUMNS if name in header}
    source = header.index(SOURCE_COLUMN) if SOURCE_COLUMN in header else None
    rows: list[SiliconRow] = []
    seen: dict[str, int] = {}
    for cells in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue  # a blank line
        if len(cells) != len(header):
            raise InputError(f"{path}: line {line}", f"{len(cells)} cells",
                             f"{len(header)} cells, one per header column")
        values = {name: cells[i].strip() for name, i in index.items()}
        row_id = values["id"]
        if not row_id:
            raise InputError(f"{path}: line {line}, column id", row_id, "a non-empty id")
        first = seen.setdefault(row_id, line)
        if first != line:
            raise InputError(f"{path}: line {line}, column id", row_id,
                             f"an id used by no other row (line {first} has it too)")
        counts = {name: _count(values[name], path, line, name)
                  for name in (*COUNT_COLUMNS, *POOL_COLUMNS) if name in values}
        measured = {name: _measured(values[name], path, line, name)
                    for name in MEASURED_COLUMNS}
        rows.append(SiliconRow(
            line, row_id, values["backend"], values["model_path"], values["system"],
            values["mode"], values["gemm_quant_mode"], values["moe_quant_mode"],
            counts["isl"], counts["osl"], counts["batch_size"], counts["tp_size"],
            counts["pp_size"], counts["attention_dp_size"], counts["moe_tp_size"],
            counts["moe_ep_size"], measured[TTFT_COLUMN], measured[TPOT_COLUMN],
            _concurrency(cells[source] if source is not None else "", counts["batch_size"]),
            *(PoolColumns(*(counts.get(f"{pool}_{name}") for name in POOL_FIELDS))
              for pool in POOLS)))
    if not rows:
        raise InputError(str(path), "no rows", f"at least one measured row: {FORMAT}")
    return SiliconTable(path, tuple(rows))


def _count(text: str, path: Path, line: int, column: str) -> int | None:
    """An integer ≥ 0, or None for an empty cell; `4.0` is 4 (a spreadsheet's export)."""
    if not text:
        return None
    value = _float(text)
    if not (math.isfinite(value) and value >= 0 and value == int(value)):
        raise InputError(f"{path}: line {line}, column {column}", text,
                         "an integer ≥ 0, or an empty cell")
    return int(value)


def _measured(text: str, path: Path, line: int, column: str) -> float | None:
    """A finite number of milliseconds, or None for an empty cell."""
    if not text:
        return None
    value = _float(text)
    if not math.isfinite(value):
        raise InputError(f"{path}: line {line}, column {column}", text,
                         "a finite number of milliseconds, or an empty cell")
    return value


def _concurrency(source: str, batch_size: int | None) -> int | None:
    """The clients the benchmark ran: as its source record states them, else batch_size."""
    match = SOURCE_CONCURRENCY.search(source)
    return int(match.group(1)) if match else batch_size


def _float(text: str) -> float:
    """The cell as a number; NaN when it is not one (the callers say what was expected)."""
    try:
        return float(text)
    except ValueError:
        return math.nan
