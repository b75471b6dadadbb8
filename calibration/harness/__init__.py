"""Operator-level GPU measurements: the data the step-time profiles are fitted to.

A step of an inference engine is, per decoder layer, a handful of operators whose time depends
on only a few sizes: the linear layers on the number of tokens in the step, prefill attention on
(new tokens, prior context), decode attention on (batch, KV tokens). This package times each of
them on one GPU with random weights shaped as one GPU of a tensor-parallel replica holds them,
and writes one CSV per (model, tp) — the contract in `csvio` — for the fitter to turn into a
profile. Run it as `python -m calibration.harness --help`.

Modules: `shapes` and `grid` (what to measure; no torch), `layers` and `attention` (the
operators), `timing` (how), `runner` (measure one shape), `csvio` (the file), `estimate` (how
long a run takes), `cli`. Only `layers`, `attention`, `timing` and `runner` import torch, and
`sim` never does.
"""
