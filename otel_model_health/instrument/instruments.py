"""The tracer, GenAI histograms, recorder and classifier a measurement uses, per set of providers.

``InstrumentsRef`` (held by each decorator and transport) resolves them lazily and again whenever
``configure()`` changed the defaults: a call pays one integer compare for "whatever configure() set up
last".
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Final

from opentelemetry import metrics, trace

from .. import defaults, semconv
from .._version import __version__
from ..health.types import HealthRecorder
from ..keys import ModelKey
from ..outcomes import CallClassifier

# Distinct model ids (request and response) given their own metric series, per set of instruments. The
# SDK keeps at most 2,000 series per instrument; a model first seen past this bound is reported as
# `_OTHER`, so hostile model strings cannot crowd out real models' series.
MAX_METRIC_MODELS: Final = 500


class Instruments:
    """Tracer, GenAI histograms, recorder and classifier for one set of providers."""

    __slots__ = (
        "admit",
        "classify",
        "duration",
        "metric_models",
        "metric_response_models",
        "recorder",
        "rejections",
        "tokens",
        "tracer",
        "ttfc",
    )

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider,
        meter_provider: metrics.MeterProvider,
        recorder: HealthRecorder,
        classify: CallClassifier,
    ) -> None:
        self.tracer = tracer_provider.get_tracer(
            semconv.SCOPE_NAME, __version__, schema_url=semconv.SCHEMA_URL
        )
        meter = meter_provider.get_meter(semconv.SCOPE_NAME, __version__, schema_url=semconv.SCHEMA_URL)
        self.duration = meter.create_histogram(
            semconv.METRIC_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=list(semconv.DURATION_BUCKETS),
        )
        self.tokens = meter.create_histogram(
            semconv.METRIC_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=list(semconv.TOKEN_BUCKETS),
        )
        self.ttfc = meter.create_histogram(
            semconv.METRIC_TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time to receive the first chunk of a streamed response.",
            explicit_bucket_boundaries_advisory=list(semconv.DURATION_BUCKETS),
        )
        self.rejections = meter.create_counter(
            semconv.METRIC_MH_REJECTIONS,
            unit="{call}",
            description="Model calls refused by enforcement before any network I/O.",
        )
        self.recorder = recorder
        # Enforcement's question to the registry, looked up once; None for a recorder without it.
        self.admit: Callable[[ModelKey], object] | None = getattr(recorder, "admit", None)
        self.classify = classify
        self.metric_models: set[ModelKey] = set()
        self.metric_response_models: set[str] = set()

    def request_model_attribute(self, key: ModelKey) -> str:
        """The model id on metrics: its own once the registry tracks the key, within the bound."""
        models = self.metric_models
        if key in models:
            return key.model
        if len(models) < MAX_METRIC_MODELS and self.recorder.tracks(key):
            models.add(key)  # set.add is atomic; a race past the bound by a few is harmless
            return key.model
        return semconv.OTHER_VALUE

    def response_model_attribute(self, model: str) -> str:
        models = self.metric_response_models
        if model in models:
            return model
        if len(models) < MAX_METRIC_MODELS:
            models.add(model)
            return model
        return semconv.OTHER_VALUE


# Instruments are cached per (tracer provider, meter provider, recorder, classifier): creating them is
# not free. The entry keeps those four alive, so their ids cannot be reused by other objects while it is
# cached; the cache is bounded so that replaced providers (each configure(), each test) are let go. An
# evicted set still in use is only rebuilt: the SDK hands back the same tracer and histograms.
_MAX_CACHED: Final = 16
_cache: dict[tuple[int, int, int, int], tuple[Instruments, object, object, object, object]] = {}
_cache_lock = threading.Lock()


def instruments_for(
    *,
    registry: HealthRecorder | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
) -> Instruments:
    tp = tracer_provider if tracer_provider is not None else defaults.default_tracer_provider()
    mp = meter_provider if meter_provider is not None else defaults.default_meter_provider()
    rec: HealthRecorder = registry if registry is not None else defaults.default_registry()
    classify = defaults.call_classifier()
    cache_key = (id(tp), id(mp), id(rec), id(classify))
    with _cache_lock:
        hit = _cache.get(cache_key)
        if hit is not None:
            return hit[0]
        instruments = Instruments(tracer_provider=tp, meter_provider=mp, recorder=rec, classify=classify)
        if len(_cache) >= _MAX_CACHED:
            del _cache[next(iter(_cache))]  # the oldest
        _cache[cache_key] = (instruments, tp, mp, rec, classify)
        return instruments


class InstrumentsRef:
    """Resolves ``Instruments`` lazily and again whenever ``configure()`` changed the defaults."""

    __slots__ = ("_generation", "_instruments", "_meter_provider", "_registry", "_tracer_provider")

    def __init__(
        self,
        *,
        registry: HealthRecorder | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self._registry = registry
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self._generation = -1
        self._instruments: Instruments | None = None

    def get(self) -> Instruments:
        instruments = self._instruments
        if instruments is None or self._generation != defaults.generation:
            self._generation = defaults.generation
            instruments = self._instruments = instruments_for(
                registry=self._registry,
                tracer_provider=self._tracer_provider,
                meter_provider=self._meter_provider,
            )
        return instruments
