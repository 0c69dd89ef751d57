"""Exceptions the control plane acts on. Adapters translate boto3's errors into these."""

from __future__ import annotations


class RelayError(Exception):
    """Base of gluerelay's control-plane errors."""


class ConcurrentRunsExceededException(RelayError):  # noqa: N818 - the Lambda error name the ASL retries on
    """Glue refused a job run because the job already runs MaxConcurrentRuns times.

    The class name is the Lambda ``errorType``, which the state machine's Retry matches."""


class CrawlerRunningError(RelayError):
    """The crawler is already crawling (a crawl someone else started, or a race we lost)."""


class ConditionFailedError(RelayError):
    """A conditional write lost: someone else changed the item first."""


class TaskAlreadyClosedError(RelayError):
    """Step Functions no longer waits for this token (completed, timed out or its execution ended)."""


class ExecutionAlreadyExistsError(RelayError):
    """An execution with this name exists: the run was started before."""


class NotFoundError(RelayError):
    """The named Glue job run, crawler or object does not exist."""


class GlueRefusedError(RelayError):
    """Glue refused a request: its error code and message, as a failed step's cause carries them."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class CatalogError(GlueRefusedError):
    """The Data Catalog refused a catalog step's table or partition."""


class QualityError(GlueRefusedError):
    """Glue Data Quality refused a quality step's ruleset or evaluation run."""
