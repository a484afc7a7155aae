"""Benchmarks of otel_model_health: ``python -m tests.benchmarks`` (``make bench``).

Every figure is a ratio or a difference against a baseline measured in the same run, interleaved with
it round by round, so a noisy, shared machine shifts both sides alike. See docs/performance.md.
"""
