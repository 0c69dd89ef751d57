"""The one logger, tracer and metrics of all functions (Powertools). Service name, namespace and log
level come from the template's environment (POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE,
POWERTOOLS_LOG_LEVEL)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

logger = Logger()
tracer = Tracer()
metrics = Metrics()


def count(
    name: str, value: float, *, pipeline: str | None = None, unit: MetricUnit = MetricUnit.Count
) -> None:
    """A figure in all (dimension service: what the stack's alarms read) and, given a pipeline, for it too
    (dimensions service and Pipeline: what the dashboard shows per pipeline)."""
    metrics.add_metric(name=name, unit=unit, value=value)
    if pipeline is not None:
        of_pipeline(name, value, pipeline, unit=unit)


def of_pipeline(name: str, value: float, pipeline: str, *, unit: MetricUnit = MetricUnit.Count) -> None:
    """A figure of one pipeline only (dimensions service and Pipeline)."""
    with single_metric(name=name, unit=unit, value=value, default_dimensions={"Pipeline": pipeline}):
        pass
