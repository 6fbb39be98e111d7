"""Benchmarks behind ``arbx bench``: measured quality of the detectors and matchers."""
