"""The Spark configuration of the local stack: Delta Lake plus S3A pointed at the local S3 server.

One definition, used by the local Databricks runner (as ``spark-submit --conf`` pairs) and by the test
suite's shared SparkSession, so a job under test sees exactly what it sees when the runner submits it.
On a real Databricks cluster none of this is needed: Delta is built in and S3 access comes from the
cluster's instance profile or Unity Catalog external location.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_CACHE = Path(os.environ.get("LAKEHOUSE_CACHE", Path.home() / ".cache" / "lakehouse-ref"))


def jar_paths(cache_dir: Path = DEFAULT_CACHE) -> list[str]:
    """The Delta and S3A jars `dev/stack.sh install` resolved from Maven Central (see dev/jars/pom.xml)."""
    jars = sorted(str(p) for p in (cache_dir / "jars").glob("*.jar"))
    if not jars:
        raise RuntimeError(
            f"no Spark jars in {cache_dir / 'jars'}: run `dev/stack.sh install` (or `make demo`) first"
        )
    return jars


def local_spark_conf(env: dict[str, str] | None = None, cache_dir: Path = DEFAULT_CACHE) -> dict[str, str]:
    """spark conf for local Spark with Delta and S3A against S3_ENDPOINT_URL.

    Jobs use ``s3://bucket/key`` paths, as they do on Databricks; locally ``s3://`` is served by S3A.
    """
    env = dict(os.environ if env is None else env)
    conf = {
        "spark.jars": ",".join(jar_paths(cache_dir)),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        # two cores: Spark's default of 200 shuffle partitions, and Delta's 50 partitions for reading
        # its log, are pure scheduling overhead here (measured: a job 2-4x faster with these two)
        "spark.sql.shuffle.partitions": "4",
        "spark.databricks.delta.snapshotPartitions": "2",
        # VACUUM lists a table's files in this many tasks (default 10,000): on two cores the erasure's
        # VACUUM took ~70 s with the default and ~22 s with 4 (the walkthrough notebook's erasure cell)
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": "4",
        "spark.ui.enabled": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
    }
    if env.get("S3_ENDPOINT_URL"):
        conf.update(
            {
                "spark.hadoop.fs.s3a.endpoint": env["S3_ENDPOINT_URL"],
                "spark.hadoop.fs.s3a.endpoint.region": env.get("S3_REGION", "us-east-1"),
                "spark.hadoop.fs.s3a.access.key": env.get("S3_ACCESS_KEY_ID", ""),
                "spark.hadoop.fs.s3a.secret.key": env.get("S3_SECRET_ACCESS_KEY", ""),
                "spark.hadoop.fs.s3a.path.style.access": "true",
                "spark.hadoop.fs.s3a.connection.ssl.enabled": str(
                    env["S3_ENDPOINT_URL"].startswith("https")
                ).lower(),
                # every object Spark writes is encrypted at rest, as the extract's are; S3A names
                # SSE-S3 by its header value
                "spark.hadoop.fs.s3a.encryption.algorithm": "AES256",
            }
        )
    return conf
