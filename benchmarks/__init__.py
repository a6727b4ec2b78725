"""Benchmarks (not tests): they report numbers, see benchmarks/README.md."""
