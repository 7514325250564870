"""Benchmarks with their targets; each writes its figures as JSON under bench/results/."""
