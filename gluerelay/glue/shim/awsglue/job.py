"""``awsglue.job.Job``: bookmarks are not emulated; init and commit mark the run's bounds in the log."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("awsglue.job")


class Job:
    def __init__(self, glue_context: Any) -> None:
        self.glue_context = glue_context
        self.name: str | None = None

    def init(self, job_name: str, args: dict[str, str] | None = None) -> None:
        self.name = job_name
        logger.info("job %s started", job_name)

    def commit(self) -> None:
        logger.info("job %s committed", self.name)
