"""What `tokenfactory stress` prints: the fleet under test and one line per stress case
(text only; the CLI decides where it goes). The scenario's name is shown `printable`, as
the table shows its cells."""

from __future__ import annotations

from typing import Any

from sim.report.text import Column, or_dash, printable, table, usd

STRESS_COLUMNS = (
    Column("case", "<"), Column("P(SLO)"), Column("attained"), Column("violation min"),
    Column("worst queue"), Column("replicas needed"), Column("extra GPUs"),
    Column("headroom $/year"),
)


def describe(document: dict[str, Any]) -> str:
    lines = [f"stress {printable(str(document['scenario']))} (seed {document['seed']}): "
             f"{document['replicas']} replicas × "
             f"{document.get('gpus_per_replica', document['tensor_parallel'])} GPUs at "
             f"{document['arrival_rate_per_s']:g} req/s; P(SLO met) over {document['draws']} "
             f"draws; the SLO must hold with P ≥ {document['confidence']:.0%}", ""]
    cells = []
    for c in document["cases"]:
        cells.append([
            c["case"], f"{c['slo_met_probability']:.0%}", f"{c['slo_attainment_p50']:.2%}",
            f"{c['violation_minutes']['p50']:g} (max {c['violation_minutes']['max']})",
            f"{c['max_queue']['p50']:g} (max {c['max_queue']['max']})",
            or_dash(c["replicas_needed"]), or_dash(c["extra_gpus"]),
            usd(c["headroom_usd_per_year"], 0),
        ])
    return "\n".join([*lines, *table(STRESS_COLUMNS, cells)])
