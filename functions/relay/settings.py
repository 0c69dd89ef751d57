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


class StartStepSettings(_Settings):
    pass


class GlueEventSettings(_Settings):
    data_bucket: str = Field(alias="DATA_BUCKET", min_length=3)
    summary_prefix: str = Field(alias="SUMMARY_PREFIX", default="summaries")


class ArrivalSettings(_Settings):
    data_bucket: str = Field(alias="DATA_BUCKET", min_length=3)
    state_machine_arn: str = Field(alias="STATE_MACHINE_ARN", pattern=r"^arn:[a-z-]+:states:")
    manifest_prefix: str = Field(alias="MANIFEST_PREFIX", default="manifests")
    claim_ttl_days: int = Field(alias="OBJECT_CLAIM_TTL_DAYS", default=30, ge=1)
    orphan_claim_seconds: int = Field(alias="ORPHAN_CLAIM_SECONDS", default=900, ge=60)


class SweeperSettings(GlueEventSettings):
    repair_after_seconds: int = Field(alias="REPAIR_AFTER_SECONDS", default=900, ge=0)
    stuck_after_seconds: int = Field(alias="STUCK_AFTER_SECONDS", default=3600, ge=0)
