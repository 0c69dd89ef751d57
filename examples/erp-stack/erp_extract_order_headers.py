"""Glue 5.0 job ``erp_extract_order_headers`` (the ERP team's, another stack's): the order-header files of a
gluerelay run's manifest → CSV at --output_path, values as read.

Job arguments: --manifest_uri (the run's manifest), --output_path (where to write), --name_prefix (which
landed files are headers; default ``order-headers``). gluerelay also passes --run_id and --summary_uri,
which this job, like any script, is free to ignore.
"""

from __future__ import annotations

import json
import sys

import boto3
from awsglue.context import GlueContext
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext

CSV_OPTIONS = {"header": "true", "quote": '"', "escape": '"'}


def main() -> None:
    args = getResolvedOptions(sys.argv, ["JOB_NAME", "manifest_uri", "output_path", "name_prefix"])
    glue_context = GlueContext(SparkContext.getOrCreate())
    spark = glue_context.spark_session
    job = Job(glue_context)
    job.init(args["JOB_NAME"], args)
    bucket, _, key = args["manifest_uri"].removeprefix("s3://").partition("/")
    manifest = json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    files = [
        f"s3://{o['bucket']}/{o['key']}"
        for o in manifest["objects"]
        if o["key"].rsplit("/", 1)[-1].startswith(args["name_prefix"])
    ]
    if not files:
        raise ValueError(f"manifest {args['manifest_uri']} names no {args['name_prefix']}* file")
    headers = spark.read.options(**CSV_OPTIONS).csv(files[0])
    for uri in files[1:]:
        headers = headers.unionByName(spark.read.options(**CSV_OPTIONS).csv(uri))
    headers.write.mode("overwrite").options(**CSV_OPTIONS).csv(args["output_path"])
    job.commit()


if __name__ == "__main__":
    main()
