"""Read one published batch: its manifest, then exactly the files it lists, checked against it."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse_jobs import hadoop_fs
from lakehouse_jobs.contracts import SourceContract, arrow_schema, spark_schema
from lakehouse_jobs.manifest import BatchManifest, FileEntry, ManifestError


class BatchError(RuntimeError):
    """The batch cannot be used as published: the job fails and its tables are left unchanged."""


def read_manifest(spark: SparkSession, path: str, contract: SourceContract) -> BatchManifest:
    """The batch's manifest, checked for the contract's table and columns.

    Raises BatchError when the manifest is invalid (manifest.ManifestError's reasons) or describes
    another table or other columns than the contract.
    """
    try:
        manifest = BatchManifest.from_json(hadoop_fs.read_text(spark, path), source=path)
    except ManifestError as e:
        raise BatchError(str(e)) from e
    problems = []
    if manifest.table != contract.table:
        problems.append(f"table {manifest.table!r}, expected {contract.table!r}")
    expected = arrow_schema(contract, landed=True).names
    if manifest.column_names != expected:
        problems.append(f"source columns changed: {manifest.column_names} (expected {expected})")
    if problems:
        raise BatchError(f"invalid manifest {path}: " + "; ".join(problems))
    return manifest


def file_problems(spark: SparkSession, files: list[FileEntry]) -> str | None:
    """None when every listed file is where the manifest says with its size and SHA-256; else what is
    wrong, as "is incomplete: <file> ..." (missing, another size: a truncated or zero-byte upload) or "is
    not what was extracted: <file> has SHA-256 ..." (the same size, other bytes).

    Sizes come from a listing; the digests from one Spark job that reads the files whole (the binaryFile
    source) and hashes them on the executors: the price is one more read of the batch's bytes."""
    problems = []
    for entry in files:
        size = hadoop_fs.file_size(spark, entry.path)
        if size is None:
            problems.append(f"missing file {entry.path}")
        elif size != entry.bytes:
            problems.append(f"{entry.path} has {size} bytes, manifest says {entry.bytes}")
    if problems:
        return "is incomplete: " + "; ".join(problems)
    if not files:
        return None
    listed = {hadoop_fs.qualified(spark, entry.path): entry for entry in files}
    read = {r["path"]: r["sha256"] for r in spark.read.format("binaryFile").load(list(listed))
            .select("path", F.sha2("content", 256).alias("sha256")).collect()}
    problems = [f"{entry.path} has SHA-256 {read.get(path)}, manifest says {entry.sha256}"
                for path, entry in listed.items() if read.get(path) != entry.sha256]
    return "is not what was extracted: " + "; ".join(problems) if problems else None


def read_batch(spark: SparkSession, manifest: BatchManifest, contract: SourceContract,
               files: list[FileEntry] | None = None, rows: int | None = None) -> DataFrame:
    """Exactly the manifest's files, read with the contract's landed schema (never inferred): its columns
    plus a `<column>_raw` text column for each date or timestamp column (contracts.raw_columns), holding
    the source text of a value that had no calendar equivalent and landed as null.

    `files` and `rows`: another list of the batch's files (its change set's) and their row count; default
    manifest.files and manifest.row_count.
    Raises BatchError when a listed file is missing or is not what the extract wrote (file_problems: its
    size, then its SHA-256; a truncated upload shows here, before Parquet fails with a cryptic error), or
    when the rows read differ from the manifest's count.
    """
    files = manifest.files if files is None else files
    expected = manifest.row_count if rows is None else rows
    if problem := file_problems(spark, files):
        raise BatchError(f"batch {manifest.batch_id} {problem}")

    schema = spark_schema(contract, landed=True)
    if files:
        df = spark.read.schema(schema).parquet(*(entry.path for entry in files))
    else:  # an empty extract may publish no file at all
        df = spark.createDataFrame([], schema)
    read = df.count()
    if read != expected:
        raise BatchError(f"batch {manifest.batch_id}: read {read} rows, manifest says {expected}")
    return df.select(*schema.fieldNames())
