"""Metrics and cost: pure functions from per-request columns, replica counters and prices to
the numbers a result reports (`latency` for latency, SLO and queue statistics; `cost` for
$/GPU-hour, $/1M tokens and energy; `record` for the flat `RunRecord` of one run, built from
both)."""
