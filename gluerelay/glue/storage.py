"""Paths as Spark sees them, for the local engine: a local folder or an ``s3://`` prefix.

Spark treats an output path as a directory of part files and ignores names starting with ``_`` or
``.`` when it reads one. DuckDB sees single files, so the local engine lists and clears "directories"
through this module. S3 goes through boto3, which honours ``AWS_ENDPOINT_URL`` (moto locally).
"""

from __future__ import annotations

import glob
import shutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        rest = uri.removeprefix("s3://").removeprefix("s3a://")
        bucket, _, key = rest.partition("/")
        if not bucket:
            raise ValueError(f"not an S3 URI: {uri!r}")
        return cls(bucket, key)

    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def is_s3(path: str) -> bool:
    return path.startswith(("s3://", "s3a://"))


def normalise(path: str) -> str:
    """``s3a://`` (Hadoop) and ``file:`` URIs become the forms DuckDB reads."""
    if path.startswith("s3a://"):
        return "s3://" + path.removeprefix("s3a://")
    return path.removeprefix("file://")


@cache
def _s3() -> Any:
    """The S3 client, made on first use: importing boto3 costs a job about 0.1 s of start-up, and a run
    on local paths never needs it."""
    import boto3

    return boto3.client("s3")


def _is_data_file(name: str) -> bool:
    return not name.startswith(("_", "."))


def _list_s3(prefix: S3Location) -> list[str]:
    key_prefix = prefix.key.rstrip("/") + "/" if prefix.key else ""
    keys: list[str] = []
    for page in _s3().get_paginator("list_objects_v2").paginate(Bucket=prefix.bucket, Prefix=key_prefix):
        for item in page.get("Contents", []):
            relative = item["Key"][len(key_prefix) :]
            if "/" not in relative and relative and _is_data_file(relative):
                keys.append(f"s3://{prefix.bucket}/{item['Key']}")
    return sorted(keys)


def data_files(path: str) -> list[str]:
    """The files a Spark read of ``path`` would see: the file itself, a glob's matches, or a folder's
    data files (not recursive; ``_SUCCESS`` and dot files skipped).

    Raises FileNotFoundError, in Spark's words, when nothing is there.
    """
    path = normalise(path)
    if is_s3(path):
        location = S3Location.parse(path)
        if GLOB_CHARS & set(path):
            return [path]  # DuckDB expands S3 globs itself
        if location.key and not path.endswith("/") and _s3_object_exists(location):
            return [path]
        files = _list_s3(location)
    elif GLOB_CHARS & set(path):
        files = sorted(p for p in glob.glob(path) if _is_data_file(Path(p).name) and Path(p).is_file())
    else:
        local = Path(path)
        if local.is_file():
            return [str(local)]
        files = (
            sorted(str(p) for p in local.iterdir() if p.is_file() and _is_data_file(p.name))
            if local.is_dir()
            else []
        )
    if not files:
        raise FileNotFoundError(f"[PATH_NOT_FOUND] Path does not exist: {path}")
    return files


def _s3_object_exists(location: S3Location) -> bool:
    response = _s3().list_objects_v2(Bucket=location.bucket, Prefix=location.key, MaxKeys=1)
    return any(item["Key"] == location.key for item in response.get("Contents", []))


def exists(path: str) -> bool:
    """Whether ``path`` holds anything (a Spark writer's "already exists")."""
    path = normalise(path)
    if is_s3(path):
        location = S3Location.parse(path)
        response = _s3().list_objects_v2(Bucket=location.bucket, Prefix=location.key, MaxKeys=1)
        return int(response.get("KeyCount", 0)) > 0
    return Path(path).exists()


def remove(path: str) -> None:
    """Delete everything at ``path`` (Spark's overwrite mode): the folder, or every key under the prefix."""
    path = normalise(path)
    if is_s3(path):
        location = S3Location.parse(path)
        prefix = location.key.rstrip("/") + "/"
        paginator = _s3().get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=location.bucket, Prefix=prefix):
            objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if objects:
                _s3().delete_objects(Bucket=location.bucket, Delete={"Objects": objects, "Quiet": True})
        return
    local = Path(path)
    if local.is_dir():
        shutil.rmtree(local)
    elif local.exists():
        local.unlink()


def make_dirs(path: str) -> None:
    """Create a local output folder; S3 needs none."""
    path = normalise(path)
    if not is_s3(path):
        Path(path).mkdir(parents=True, exist_ok=True)
