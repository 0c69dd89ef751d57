"""Typed settings, one model per function, read from the environment the template sets.

Handlers build them at invocation time (never at import), so tests and the local cloud can set the
environment per function.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Self

from pydantic import BaseModel, ConfigDict, Field


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    table_name: str = Field(alias="TABLE_NAME", min_length=3)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        return cls.model_validate(dict(os.environ if environ is None else environ))


class _WithBucket(_Settings):
    data_bucket: str = Field(alias="DATA_BUCKET", min_length=3)


class StartStepSettings(_WithBucket):
    pass


class GlueEventSettings(_WithBucket):
    pass


class CloseRunSettings(_WithBucket):
    pass


class _StartsRuns(_WithBucket):
    state_machine_arn_prefix: str = Field(
        alias="STATE_MACHINE_ARN_PREFIX",
        pattern=r"^arn:[a-z-]+:states:[a-z0-9-]+:[0-9]{12}:stateMachine:[A-Za-z0-9-]+_$",
        description="arn:…:stateMachine:<stack>_ : a pipeline's state machine is this plus its name",
    )


class _Claims(_Settings):
    """A function that claims landed objects in the ledger: how long a claim lives."""

    claim_ttl_days: int = Field(alias="OBJECT_CLAIM_TTL_DAYS", default=30, ge=1)


class ArrivalSettings(_StartsRuns, _Claims):
    orphan_claim_seconds: int = Field(alias="ORPHAN_CLAIM_SECONDS", default=900, ge=60)


class PrepareRerunSettings(_WithBucket, _Claims):
    pass


class ScheduleSettings(_StartsRuns):
    pass


class SweeperSettings(_WithBucket):
    repair_after_seconds: int = Field(alias="REPAIR_AFTER_SECONDS", default=900, ge=0)
    stuck_after_seconds: int = Field(alias="STUCK_AFTER_SECONDS", default=3600, ge=0)
