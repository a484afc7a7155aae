"""The health engine: windows, breakers, the registry, the span processor and health metrics.

Imports nothing of httpx, wrapt, sentry_sdk or the CLI.
"""
