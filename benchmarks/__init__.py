"""Benchmarks of apa-console, each run from the repo root as `python -m benchmarks.<name>`."""
