"""Evaluation as plain functions on tensors: used by callbacks, `diffrep test` and benchmarks."""
