"""One metrics query for the dashboards' charts and for programs: parse, validate, answer."""

from monitoring.metrics.answer import metrics_answer, metrics_answers
from monitoring.metrics.query import (
    MEASURES,
    MetricsQuery,
    MetricsQueryError,
    metrics_query_parse,
)

__all__ = [
    "MEASURES",
    "MetricsQuery",
    "MetricsQueryError",
    "metrics_answer",
    "metrics_answers",
    "metrics_query_parse",
]
