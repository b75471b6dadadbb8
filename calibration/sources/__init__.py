"""Importers that turn published operator timings into `sim.calibrate.measurements.Measurements`."""
