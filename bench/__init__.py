"""Benchmarks (`python -m bench`): hlrd beside what users would otherwise use."""
