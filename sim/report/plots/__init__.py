"""Figures as matplotlib `Figure` objects (object API, Agg backend): no pyplot state, no files.

Callers that want a file turn a figure into PNG bytes with `png_bytes` and write them.
"""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def png_bytes(figure: Figure, dpi: int = 120) -> bytes:
    buffer = io.BytesIO()
    figure.set_dpi(dpi)
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()
