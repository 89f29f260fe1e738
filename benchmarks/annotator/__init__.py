"""The weak annotator: its defaults, its accuracy and calibration on HH-RLHF, its speed-up."""
