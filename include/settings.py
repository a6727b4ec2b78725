"""Environment-dependent values of the pipelines, each overridable by an environment variable.

Only names live here, never secrets: credentials and endpoints come from Airflow connections
(AIRFLOW_CONN_* locally, a secrets backend in production). Reading os.environ is cheap, so importing this
module at DAG parse time does no I/O.
"""

import os

MYSQL_CONN_ID = os.getenv("MYSQL_CONN_ID", "mysql_members")
AWS_CONN_ID = os.getenv("AWS_CONN_ID", "aws_lakehouse")
DATABRICKS_CONN_ID = os.getenv("DATABRICKS_CONN_ID", "databricks_default")

LANDING_BUCKET = os.getenv("LANDING_BUCKET", "landing")
LAKEHOUSE_BUCKET = os.getenv("LAKEHOUSE_BUCKET", "lakehouse")

# Where the repo's files live in the Databricks workspace (see docs/production.md); the local runner
# maps this prefix to the checkout, so the submitted JSON is the same in both worlds.
SPARK_JOBS_ROOT = os.getenv("SPARK_JOBS_ROOT", "/Workspace/Shared/lakehouse-ref/files")

# Server-side encryption for every object the extract writes: "AES256" (SSE-S3) or "aws:kms" (SSE-KMS,
# with S3_SSE_KMS_KEY_ID naming the key).
S3_SSE = os.getenv("S3_SSE", "AES256")
S3_SSE_KMS_KEY_ID = os.getenv("S3_SSE_KMS_KEY_ID") or None

# Rows per Parquet file of an extract batch (row groups hold 128K rows; see README "Design choices").
EXTRACT_ROWS_PER_FILE = int(os.getenv("EXTRACT_ROWS_PER_FILE", "1000000"))
# "connectorx" (default, fastest) or "mysqlclient" (pure DB-API; also used whenever the MySQL connection
# carries ssl* options, which ConnectorX cannot take).
EXTRACT_READER = os.getenv("EXTRACT_READER", "connectorx")
# Extra Hive-style partition columns inside each batch, comma-separated (e.g. "country"); by default a
# batch is partitioned only by its extraction interval (README, "Design choices").
EXTRACT_PARTITION_COLS = tuple(c.strip() for c in os.getenv("EXTRACT_PARTITION_COLS", "").split(",") if c.strip())
