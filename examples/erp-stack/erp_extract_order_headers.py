"""Glue 5.0 job ``erp_extract_order_headers`` (the ERP team's, another stack's): the order-header files of a
gluerelay run's manifest → CSV at --output_path, values as read.

Job arguments: --manifest_uri (the run's manifest), --output_path (where to write), --name_prefix (which
landed files are headers; default ``order-headers``). gluerelay also passes --run_id and --summary_uri,
which this job, like any script, is free to ignore.

Header files are small: each is fetched through boto3 by the exact version the manifest names (so an
overwrite after landing changes nothing, and a key with glob characters is one object) and parsed here.
"""

from __future__ import annotations

import csv
import io
import json
import sys

import boto3
from awsglue.context import GlueContext
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext
from pyspark.sql.types import StringType, StructField, StructType

CSV_OPTIONS = {"header": "true", "quote": '"', "escape": '"'}


def main() -> None:
    args = getResolvedOptions(sys.argv, ["JOB_NAME", "manifest_uri", "output_path", "name_prefix"])
    glue_context = GlueContext(SparkContext.getOrCreate())
    spark = glue_context.spark_session
    job = Job(glue_context)
    job.init(args["JOB_NAME"], args)
    s3 = boto3.client("s3")
    bucket, _, key = args["manifest_uri"].removeprefix("s3://").partition("/")
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    files = [o for o in manifest["objects"] if o["key"].rsplit("/", 1)[-1].startswith(args["name_prefix"])]
    if not files:
        raise ValueError(f"manifest {args['manifest_uri']} names no {args['name_prefix']}* file")
    columns: list[str] = []
    rows: list[dict[str, str]] = []
    for o in files:
        version = {"VersionId": o["version_id"]} if o.get("version_id") else {}
        match = {"IfMatch": o["etag"]} if o.get("etag") and not version else {}
        body = s3.get_object(Bucket=o["bucket"], Key=o["key"], **version, **match)["Body"].read()
        reader = csv.DictReader(io.StringIO(body.decode("utf-8"), newline=""))
        columns += [c for c in reader.fieldnames or [] if c not in columns]
        rows += list(reader)
    schema = StructType([StructField(c, StringType(), True) for c in columns])  # values as read
    headers = spark.createDataFrame([tuple(r.get(c) for c in columns) for r in rows], schema)
    headers.write.mode("overwrite").options(**CSV_OPTIONS).csv(args["output_path"])
    job.commit()


if __name__ == "__main__":
    main()
