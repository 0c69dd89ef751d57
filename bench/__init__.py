"""Benchmarks behind `make bench`; results go to bench/results/latest.json and BENCHMARKS.md."""
