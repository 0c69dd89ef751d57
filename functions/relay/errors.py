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


class CatalogError(RelayError):
    """The Data Catalog refused a catalog step's table or partition: Glue's error code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
