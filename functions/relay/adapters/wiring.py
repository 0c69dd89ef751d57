"""Builds the control plane's adapters from a function's settings: boto3 clients once per container."""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from relay.adapters.aws import DataBucketService, GlueService, StepFunctionsService
from relay.adapters.dynamodb import ControlTable
from relay.ports import ControlPlane
from relay.settings import _Claims, _Settings, _StartsRuns, _WithBucket

# Standard retry mode: throttling and 5xx are retried with backoff before our code sees them.
BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})


@cache
def client(service: str) -> Any:
    return boto3.client(service, config=BOTO_CONFIG)


@cache
def table(name: str) -> Any:
    return boto3.resource("dynamodb", config=BOTO_CONFIG).Table(name)


def control_plane(settings: _Settings) -> ControlPlane:
    claims = {"claim_ttl": timedelta(days=settings.claim_ttl_days)} if isinstance(settings, _Claims) else {}
    store = ControlTable(table(settings.table_name), **claims)
    bucket_name = settings.data_bucket if isinstance(settings, _WithBucket) else ""
    machines = settings.state_machine_arn_prefix if isinstance(settings, _StartsRuns) else None
    return ControlPlane(
        steps=store,
        runs=store,
        leases=store,
        glue=GlueService(client("glue")),
        workflow=StepFunctionsService(client("stepfunctions"), machines),
        bucket=DataBucketService(client("s3"), bucket_name),
        ledger=store,
    )
