"""Local stand-in for the part of AWS Glue's ``awsglue`` library that gluerelay's Glue scripts use.

Only on the local engine's import path (never deployed): getResolvedOptions, GlueContext (spark_session,
create_dynamic_frame.from_options for JDBC through a Glue connection) and Job. On AWS the real library
is used; the scripts do not change.
"""
