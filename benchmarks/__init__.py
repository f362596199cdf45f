"""Benchmarks: python -m benchmarks.run [--quick] writes benchmarks/RESULTS.md and its plots."""
