"""``awsglue.context.GlueContext`` over the local engine's Spark session."""

from __future__ import annotations

from typing import Any

from awsglue.dynamicframe import DynamicFrameReader
from gluerelay.glue import engine


class GlueContext:
    def __init__(self, spark_context: Any, **options: Any) -> None:
        self._spark_context = spark_context
        self.spark_session = engine.spark_session_for(spark_context)
        self.create_dynamic_frame = DynamicFrameReader(self)

    def get_logger(self) -> Any:
        import logging

        return logging.getLogger("awsglue")
