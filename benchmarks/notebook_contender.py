"""The notebook contender of benchmarks.member_daily: what a brief's candidate writes in a notebook.

    spark-submit --master local[2] --driver-memory 4096m --properties-file <conf> \
        benchmarks/notebook_contender.py --database bench_daily --table-path s3://bucket/notebook/member \
        --result /tmp/result.json

Read the MySQL table with Spark's JDBC source in parallel partitions, then MERGE it into a Delta table on the
member's key (on the first load, when no table exists yet, write it):

    df = spark.read.jdbc(url, "member", column=..., lowerBound=..., upperBound=..., numPartitions=..., properties)
    DeltaTable.forPath(spark, path).alias("t").merge(df.alias("s"), "t.member_id = s.member_id")
        .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute()

The partition column: `member_id`, the key, is a UUID string, which Spark's JDBC partitioning cannot split
(it takes numeric, date or timestamp columns only), so the candidate takes the only other typed column,
`registration_date`, with its MIN and MAX as bounds (one query first). PySpark's `read.jdbc(column=...)` turns
the bounds into int(), so with a date column the same reader is written as `read.format("jdbc")` with
`partitionColumn`, `lowerBound`, `upperBound` and `numPartitions`: the same JDBC relation, the same
partition queries. The column has no index in MySQL: each partition's query is a full scan of the table
with a range filter, as it would be at the source.

Driver: MySQL Connector/J (`jdbc:mysql://`, the URL Spark's MySQL dialect handles), with the `fetchsize` a
notebook sets; Connector/J ignores it without `useCursorFetch=true`, so each partition's rows are read
whole into the JVM, as they are in such a notebook. Credentials from MYSQL_HOST, MYSQL_PORT,
MYSQL_EXTRACT_USER, MYSQL_EXTRACT_PASSWORD; S3A and Delta settings come from spark-submit's properties
file (never argv). Writes the timings of its phases as JSON to --result.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--table", default="member")
    parser.add_argument("--table-path", required=True, help="the Delta table (s3://bucket/prefix)")
    parser.add_argument("--partitions", type=int, default=8, help="numPartitions of the JDBC read")
    parser.add_argument("--fetchsize", type=int, default=10_000)
    parser.add_argument("--result", required=True)
    args = parser.parse_args(argv)

    from delta.tables import DeltaTable
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("notebook_contender").getOrCreate()
    session = time.perf_counter()

    host, port = os.environ.get("MYSQL_HOST", "127.0.0.1"), os.environ.get("MYSQL_PORT", "3306")
    url = f"jdbc:mysql://{host}:{port}/{args.database}"
    properties = {"user": os.environ["MYSQL_EXTRACT_USER"], "password": os.environ["MYSQL_EXTRACT_PASSWORD"],
                  "driver": "com.mysql.cj.jdbc.Driver", "fetchsize": str(args.fetchsize)}
    bounds = spark.read.jdbc(url, f"(SELECT MIN(registration_date) AS lo, MAX(registration_date) AS hi "
                                  f"FROM {args.table}) AS bounds", properties=properties).first()
    bounded = time.perf_counter()

    reader = spark.read.format("jdbc").option("url", url).option("dbtable", args.table)
    for key, value in properties.items():
        reader = reader.option(key, value)
    df = (reader.option("partitionColumn", "registration_date")
          .option("lowerBound", str(bounds["lo"])).option("upperBound", str(bounds["hi"]))
          .option("numPartitions", str(args.partitions)).load())

    if DeltaTable.isDeltaTable(spark, args.table_path):
        action = "merge"
        (DeltaTable.forPath(spark, args.table_path).alias("t")
         .merge(df.alias("s"), "t.member_id = s.member_id")
         .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())
    else:
        action = "write"
        df.write.format("delta").mode("overwrite").save(args.table_path)
    written = time.perf_counter()
    spark.stop()
    with open(args.result, "w") as f:
        json.dump({"action": action, "partitions": args.partitions, "partition_column": "registration_date",
                   "bounds": [str(bounds["lo"]), str(bounds["hi"])],
                   "steps_s": {"session": round(session - STARTED, 3), "bounds_query": round(bounded - session, 3),
                               action: round(written - bounded, 3)},
                   "work_s": round(written - session, 3)}, f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
