"""The benchmark harness: ``python -m benchmarks SCENARIO [--quick|--full]``.

Every scenario runs a real ``amebo serve`` process against a fresh database, drives it from a
load generator in another process, and has a separate endpoint process receive deliveries.
Results land in ``benchmarks/results/<timestamp>/`` as JSON, Markdown and PNG plots.
"""
