"""Calibration data: the GPU and model catalogue (and, later, measured step-time profiles)."""
