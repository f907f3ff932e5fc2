"""Benchmarks: `make bench` prints figures, each against a baseline measured in the same run."""
