"""Files (invoice_load steps 1-3 and 5): list, skip what the ledger holds, hash, plan, and decide
which parsed file of an invoice number is loaded. Reads no content but where a step says so."""

from __future__ import annotations

import datetime as dt
import os
import re

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from lakehouse_jobs import hadoop_fs
from lakehouse_jobs.manifest import FileList

LISTING_COLUMNS = ["source_path", "file_size", "file_modified_at"]


# Hadoop expands these in a path given to a reader: "inv [2].pdf" would read "inv 2.pdf"
_GLOB_CHARACTERS = re.compile(r"([\[\]{}*?\\])")


def literal_paths(paths: list[str]) -> list[str]:
    """`paths` escaped for a Spark reader, so that each names exactly its file (no glob expansion)."""
    return [_GLOB_CHARACTERS.sub(r"\\\1", p) for p in paths]

# a listed file: (size in bytes, arrival time as a naive UTC datetime, or None to take the file system's)
Listed = dict[str, tuple[int, dt.datetime | None]]


def spark_path(path: str) -> str:
    """`path` as Spark's file sources name it: a local path gets "file:" (s3://... stays as it is)."""
    return path if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", path) else "file:" + os.path.abspath(path)


def listed_files(spark: SparkSession, file_list: FileList) -> Listed:
    """The files of `file_list`, by the path Spark names them with: their size, and their arrival time
    (``arrived_at``; for a zero-byte file without one, its modification time from the file system)."""
    listed: Listed = {}
    for f in file_list.files:
        arrived = (dt.datetime.fromisoformat(f.arrived_at).astimezone(dt.timezone.utc).replace(tzinfo=None)
                   if f.arrived_at else None)
        if f.bytes == 0 and arrived is None:
            arrived = hadoop_fs.modified_at(spark, f.path)
        listed[spark_path(f.path)] = (f.bytes, arrived)
    return listed


def read_files(spark: SparkSession, paths: list[str], listed: Listed | None = None) -> DataFrame:
    """binaryFile's rows (path, modificationTime, length, content) of exactly `paths`, with a listed file's
    arrival time as its modificationTime (the copy a claim made has the claim's time). Spark's file sources
    return no row for a zero-byte file (Spark 4.0: there is no split to read), so the listed zero-byte
    files get rows made here, with empty content. Raises Spark's AnalysisException for a path that does
    not exist."""
    listed = listed or {}
    empty = {p for p in paths if p in listed and listed[p][0] == 0}
    rows = spark.createDataFrame([(p, listed[p][1], 0, b"") for p in sorted(empty)],
                                 "path string, modificationTime timestamp, length bigint, content binary")
    if readable := [p for p in paths if p not in empty]:
        rows = spark.read.format("binaryFile").load(literal_paths(readable)).unionByName(rows)
    if arrived := [(p, listed[p][1]) for p in paths if p in listed and listed[p][1] is not None]:
        times = spark.createDataFrame(arrived, "path string, _arrived_at timestamp")
        rows = rows.join(F.broadcast(times), "path", "left").select(
            "path", F.coalesce("_arrived_at", "modificationTime").alias("modificationTime"), "length", "content")
    return rows


def list_files(spark: SparkSession, incoming: str | None = None, paths: list[str] | None = None,
               listed: Listed | None = None) -> DataFrame:
    """source_path (as Spark lists it: file:/..., s3://...), file_size (bytes), file_modified_at (timestamp) of
    every file under the prefix `incoming` (recursively; Spark hides names starting with "_" or "." and
    zero-byte files) or of `paths` (read_files: every one of them). Reads no content (binaryFile reads it
    only when the column is selected). Raises Spark's AnalysisException for a path that does not exist."""
    if incoming is not None:
        df = spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(incoming)
    else:
        df = read_files(spark, paths or [], listed)
    return df.select(F.col("path").alias("source_path"), F.col("length").alias("file_size"),
                     F.col("modificationTime").alias("file_modified_at"))


def unseen_files(listing: DataFrame, ledger: DataFrame) -> DataFrame:
    """list_files' rows the ledger does not hold with the same path, size and modification time."""
    return listing.join(ledger.select(*LISTING_COLUMNS), LISTING_COLUMNS, "left_anti")


def hash_files(spark: SparkSession, paths: list[str], listed: Listed | None = None) -> DataFrame:
    """LISTING_COLUMNS + source_sha256 (SHA-256 hex of the bytes, computed in Spark) of `paths` (read_files)."""
    return read_files(spark, paths, listed).select(
        F.col("path").alias("source_path"), F.col("length").alias("file_size"),
        F.col("modificationTime").alias("file_modified_at"), F.sha2("content", 256).alias("source_sha256"))


def plan_files(hashed: DataFrame, ledger: DataFrame) -> DataFrame:
    """hash_files' rows + ``_action``: ``processed`` (the content is in the ledger), ``same_content`` (a
    file of this run with the same content and an earlier path is processed instead) or ``parse``."""
    known = ledger.select("source_sha256").distinct().withColumn("_known", F.lit(True))
    first = F.row_number().over(Window.partitionBy("source_sha256").orderBy("source_path")) == 1
    return hashed.join(known, "source_sha256", "left").select(
        *LISTING_COLUMNS, "source_sha256",
        F.when(F.col("_known"), "processed").when(~first, "same_content").otherwise("parse").alias("_action"),
    )


def decide(parsed: DataFrame, planned: DataFrame) -> DataFrame:
    """parse_files' rows with the files' size and modification time and ``outcome``: ``quarantined``,
    ``loaded`` (the last modified valid file of its invoice number in this run, then the last path),
    ``superseded`` (an earlier one) or ``changed`` (the bytes parsed are not the bytes planned: the file was
    replaced during the run; it is neither loaded nor recorded, so the next run takes it)."""
    planned = planned.select(*LISTING_COLUMNS, F.col("source_sha256").alias("_planned_sha256"))
    latest = Window.partitionBy("invoice_number", "status", "_changed").orderBy(
        F.col("file_modified_at").desc(), F.col("source_path").desc())
    return (parsed.join(planned, "source_path")
            .withColumn("_changed", F.col("source_sha256") != F.col("_planned_sha256"))
            .withColumn("outcome", F.when(F.col("_changed"), "changed")
                        .when(F.col("status") == "quarantined", "quarantined")
                        .when(F.row_number().over(latest) == 1, "loaded")
                        .otherwise("superseded"))
            .drop("_planned_sha256", "_changed"))
