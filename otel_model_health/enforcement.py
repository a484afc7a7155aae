"""Enforcement: refuse a call to a model that is down, before any network I/O (docs/enforcement.md).

Off by default (passive). With ``enforce`` on (the option of the transports, ``instrument_client``, the
decorators and ``configure()``, or ``MODEL_HEALTH_ENFORCE``), each measured call asks the registry
(``HealthRegistry.admit``) right after its measurement starts:

* CLOSED (or a model never seen): the call goes out, as in passive mode;
* HALF_OPEN with a free trial slot: the call goes out holding a ``Permit``, given back when its outcome is
  recorded, so at most ``half_open_trials`` calls are in flight;
* OPEN, rate-limited until a ``Retry-After``, or HALF_OPEN with every slot taken: refused. The call's span
  ends with ``model_health.outcome=rejected`` and ``error.type=model_unavailable``,
  ``model_health.rejections`` counts it, and nothing is recorded in the registry: the call was not made,
  so it says nothing about the model (no window, no incident, no transition, no Sentry event).

A decorated call is refused with ``ModelUnavailableError``. A transport cannot raise the SDK's own error
types, so it answers with a synthetic 503 built here (``refusal_response``) that carries
``x-should-retry: false``: the Stainless-generated SDKs (openai, anthropic, groq ...) then raise their usual
``InternalServerError`` at once, without retrying or sleeping.

Everything here is fail-open: an error in our code lets the call go out, as in passive mode.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any, Final

from . import defaults, semconv
from ._internal import report_internal_error
from .health.admission import Refusal
from .health.breaker import Permit
from .keys import ModelKey
from .outcomes import MODEL_UNAVAILABLE, REFUSED_HEADER, REJECTED, classify_exception

if TYPE_CHECKING:
    from .instrument.measurement import CallMeasurement

REFUSED_STATUS: Final = 503
__all__ = [
    "REFUSED_HEADER",
    "ModelUnavailableError",
    "admit",
    "admit_or_raise",
    "enforcing",
    "is_refusal",
    "refusal_response",
]


class ModelUnavailableError(Exception):
    """A call refused by enforcement before any network I/O: ``key``'s breaker is OPEN (``reason``
    ``breaker_open``), its HALF_OPEN trial slots are all taken (``trials_busy``), or it is rate-limited
    (``rate_limited``). ``retry_after_s`` is the wait before it may be tried again (None: unknown, when a
    trial call ends). ``state`` is the breaker state."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.describe())
        self.refusal = refusal
        self.key: ModelKey = refusal.key
        self.state = refusal.state
        self.reason = refusal.reason
        self.retry_after_s = refusal.retry_after_s


def enforcing(option: bool | None) -> bool:
    """The instrumentation's own ``enforce`` option, else configure()'s, else ``MODEL_HEALTH_ENFORCE``."""
    return option if option is not None else defaults.enforce_enabled()


def admit(m: CallMeasurement) -> Refusal | None:
    """Ask the registry whether the call ``m`` (a started ``CallMeasurement``) may go out. On a refusal,
    end ``m`` as rejected and return the refusal. Never raises: on our own error the call goes out."""
    try:
        ask = m.instruments.admit  # None: a recorder that is no HealthRegistry, nothing is enforced
        if ask is None:
            return None
        if m.health_operation == semconv.OPERATION_HEALTH_CHECK:
            return None  # probes are never refused: they are how an operator learns a model is back
        key = m.key
        # A trial slot held by an enclosing call of the same model covers this one (a decorated function
        # calling an instrumented client): the slot is one call, whichever layer measures it.
        parent = m.parent
        while parent is not None:
            permit = parent.permit
            if permit is not None and permit.tracked and parent.key == key:
                return None
            parent = parent.parent
        verdict = ask(key)
        if verdict is None:
            return None
        if isinstance(verdict, Refusal):
            _reject(m, verdict)
            return verdict
        if isinstance(verdict, Permit):
            m.permit = verdict
        return None
    except Exception:
        report_internal_error("enforcement.admit")
        return None


def admit_or_raise(m: CallMeasurement) -> None:
    """``admit`` for the decorators: a refusal raises ``ModelUnavailableError`` into the caller."""
    refusal = admit(m)
    if refusal is not None:
        raise ModelUnavailableError(refusal)


def _reject(m: CallMeasurement, refusal: Refusal) -> None:
    inst = m.instruments
    key = refusal.key
    m.span.set_attribute(semconv.MH_REJECTION_REASON, refusal.reason)
    # No error message: the reason attribute says it all, and a message would be cleaned of the request's
    # content and scrubbed, a third of a refusal's cost, for a text that is ours.
    m.finish(classification=REJECTED)
    inst.rejections.add(
        1,
        {
            semconv.GEN_AI_PROVIDER_NAME: key.provider,
            semconv.GEN_AI_REQUEST_MODEL: inst.request_model_attribute(key),
            semconv.MH_GATEWAY: key.gateway,
            semconv.MH_OPERATION: m.health_operation,
            semconv.MH_REJECTION_REASON: refusal.reason,
        },
    )


def refusal_response(module: Any, request: Any, refusal: Refusal) -> Any:
    """The transport's answer to a refused request, made without any I/O: a 503 of ``module`` (httpx or
    httpx2) that SDKs must not retry (``x-should-retry: false``), with ``retry-after`` (and
    ``retry-after-ms``) when the wait is known, and a JSON error body the openai and anthropic SDKs both
    parse: ``error.type`` is ``model_unavailable``, ``error.code`` the reason."""
    key = refusal.key
    error: dict[str, object] = {
        "type": MODEL_UNAVAILABLE,
        "code": refusal.reason,
        "message": refusal.describe(),
        "provider": key.provider,
        "model": key.model,
        "gateway": key.gateway,
        "breaker_state": str(refusal.state),
        "retry_after_s": refusal.retry_after_s,
    }
    headers = [
        ("content-type", "application/json"),
        ("x-should-retry", "false"),
        (REFUSED_HEADER, refusal.reason),
    ]
    wait = refusal.retry_after_s
    if wait is not None:
        headers.append(("retry-after", str(max(0, math.ceil(wait)))))
        headers.append(("retry-after-ms", str(max(0, math.ceil(wait * 1000.0)))))
    body = json.dumps({"type": "error", "error": error}).encode()
    return module.Response(REFUSED_STATUS, headers=headers, content=body, request=request)


def is_refusal(exc: BaseException) -> bool:
    """True for a ``ModelUnavailableError`` and for an SDK error raised from the transport's refusal (its
    ``response`` carries ``x-model-health-refused``)."""
    return isinstance(exc, ModelUnavailableError) or classify_exception(exc) is REJECTED
