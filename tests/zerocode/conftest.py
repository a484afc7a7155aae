"""The oteltap receiver of tests/configure, as a fixture of this directory: imported by a conftest, it is
registered even when tests/configure runs in the same session (imported by a test module, it is not)."""

from configure.otlp_receivers import oteltap_fixture  # noqa: F401
