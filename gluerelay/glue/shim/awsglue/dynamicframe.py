"""``DynamicFrame`` reduced to what gluerelay's scripts need: reading a JDBC table and ``toDF()``."""

from __future__ import annotations

from typing import Any

from gluerelay.glue import jdbc


class DynamicFrame:
    def __init__(self, df: Any, glue_ctx: Any, name: str = "") -> None:
        self._df = df
        self.glue_ctx = glue_ctx
        self.name = name

    def toDF(self) -> Any:
        return self._df

    def count(self) -> int:
        return int(self._df.count())

    @classmethod
    def fromDF(cls, dataframe: Any, glue_ctx: Any, name: str) -> DynamicFrame:
        return cls(dataframe, glue_ctx, name)


class DynamicFrameReader:
    def __init__(self, glue_context: Any) -> None:
        self._glue_context = glue_context

    def from_options(
        self,
        connection_type: str,
        connection_options: dict[str, str] | None = None,
        format: str | None = None,
        format_options: dict[str, str] | None = None,
        transformation_ctx: str = "",
        **kwargs: Any,
    ) -> DynamicFrame:
        options = connection_options or {}
        if connection_type not in jdbc.GLUE_JDBC_CONNECTION_TYPES:
            raise ValueError(
                f"connection_type {connection_type!r} is not emulated locally; "
                f"JDBC types are {sorted(jdbc.GLUE_JDBC_CONNECTION_TYPES)} (use spark.read for S3)"
            )
        df = jdbc.read_table(self._glue_context.spark_session, connection_type, options)
        return DynamicFrame(df, self._glue_context, transformation_ctx)
