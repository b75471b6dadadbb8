"""Calibration: measured operator timings (`measurements`) fitted into step-time profiles
(`fit`) and roofline efficiencies per GPU (`roofline`), each with its fit error."""
