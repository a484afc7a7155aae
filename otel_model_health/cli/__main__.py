"""``python -m otel_model_health.cli``: the same as the ``otel-model-health`` command."""

import sys

from . import main

sys.exit(main())
