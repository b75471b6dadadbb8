"""Importers that turn published operator timings into `sim.measurements.Measurements`."""
