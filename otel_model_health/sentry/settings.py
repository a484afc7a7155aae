"""Sentry settings: the ``sentry_*`` options of ``configure()`` and their ``SENTRY_*`` variables.

They are declared with the other options, in ``options.py``: field ``x`` here is option ``sentry_x``,
read from its variable by the same parser. Parsing is strict: a typo such as ``SENTRY_ENABLED=ture``
or ``SENTRY_TRACES_SAMPLE_RATE=20%`` is a configuration error raised at start-up, naming the variable
and its value, rather than a silently disabled bridge.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from ..options import Given, Options, read_options

_PREFIX = "sentry_"


@dataclass(frozen=True, slots=True)
class SentrySettings:
    """What ``configure()`` needs to decide whether and how to initialise Sentry."""

    enabled: bool = False
    dsn: str | None = None
    environment: str | None = None
    traces_sample_rate: float | None = None

    @property
    def active(self) -> bool:
        """True when the bridge should run: enabled and a DSN is set."""
        return self.enabled and bool(self.dsn)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SentrySettings:
        """Read the ``SENTRY_*`` variables; raise ``ValueError`` naming the variable on a bad value."""
        env = os.environ if environ is None else environ
        return cls.of(read_options(Options(), env, section="Sentry"))

    @classmethod
    def of(cls, given: Mapping[str, Given]) -> SentrySettings:
        """From the ``sentry_*`` options as ``read_options`` read them (options over variables)."""
        values = {f.name: given[_PREFIX + f.name].value for f in fields(cls)}
        return cls(**{name: value for name, value in values.items() if value is not None})
