"""The HTTP front-end: ``ModelHealthTransport`` measures each model-call attempt an httpx or httpx2
client makes, from the request it sends and the bytes it reads back.

    transports.py        the transports, and the per-attempt steps they share
    clients.py           instrument_client / uninstrument_client
    requests.py          which requests are model calls; model and stream from the body (jsonscan.py)
    httpx_support.py     lazy httpx / httpx2 loading; the response streams handed to the caller
    observer.py          one attempt's response → one outcome (sse.py, bodies.py, decoding.py, gemini.py)
    capture.py           the request's content: captured when opted in, else kept out of error texts
    jsonfast.py          json.loads's verdict without its Python wrappers, for per-call and per-event parses

Each attempt drives one ``CallMeasurement`` (``..measurement``).
"""

from .clients import instrument_client, uninstrument_client
from .transports import AsyncModelHealthTransport, ModelHealthTransport

__all__ = ["AsyncModelHealthTransport", "ModelHealthTransport", "instrument_client", "uninstrument_client"]
