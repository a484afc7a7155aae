"""The decorator front-end: ``@monitor`` / ``@probe`` measure calls of any Python callable, from its
arguments and what it returns, raises or yields.

    wrappers.py          monitor, probe: a wrapper per callable shape, picked at decoration
    call_args.py         the call's arguments, resolved by position once (ArgSpec, CallArgs)
    call_plan.py         what is fixed at decoration (model key, attributes); the per-call start
    call_results.py      a return value or an exception → the end of the measurement
    stream_managers.py   returned streams, stream managers and coroutines → proxies that end it later
    streams.py           the stream proxies
    generators.py        drivers for decorated generators and async generators

Each call drives one ``CallMeasurement`` (``..measurement``).
"""

from .call_args import CallArgs
from .wrappers import monitor, probe

__all__ = ["CallArgs", "monitor", "probe"]
