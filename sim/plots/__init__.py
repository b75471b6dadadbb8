"""Figures, drawn with matplotlib's object API (no pyplot state): functions return a Figure."""
