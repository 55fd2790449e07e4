"""Evaluations over datasets and model variants: calibration and quantization impact."""
