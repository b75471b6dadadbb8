"""Charts drawn from result files (never by re-running a simulation), with matplotlib's
object API and the Agg backend, so they render the same with or without a display."""
