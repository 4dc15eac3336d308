"""Benchmarks: timing, calibration and baseline scripts (see benchmarks/README.md)."""
