"""Benchmarks for csperf: `python -m bench` (or `make bench`) runs them and writes BENCHMARKS.md.

Each module in this package that defines a ``SUITE`` (a :class:`bench.common.Suite`) is a
section of BENCHMARKS.md; its benchmark functions each return rows comparing a figure with a
baseline measured in the same run on the same server. Add a module to add a section.
"""
