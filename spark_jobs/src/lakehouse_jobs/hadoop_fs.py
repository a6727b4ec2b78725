"""Small files (manifests, result JSON) through the JVM's Hadoop FileSystem.

A job reads and writes whatever paths the cluster can: s3:// on Databricks (instance profile or Unity
Catalog external location), s3:// served by S3A locally, file: in tests. Spark's own file sources are no
use here: they skip names starting with "_", like _manifest.json. Needs a classic cluster (`spark._jvm`),
not serverless or Spark Connect.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pyspark.sql import SparkSession


def _fs(spark: SparkSession, path: str) -> tuple[Any, Any]:
    """(FileSystem, Path) objects of the JVM for `path`."""
    hadoop_path = spark._jvm.org.apache.hadoop.fs.Path(path)
    return hadoop_path.getFileSystem(spark._jsc.hadoopConfiguration()), hadoop_path


def read_text(spark: SparkSession, path: str) -> str:
    """The whole file as UTF-8 text; raises the JVM's FileNotFoundException (a Py4JJavaError) if absent."""
    fs, hadoop_path = _fs(spark, path)
    stream = fs.open(hadoop_path)
    try:
        return spark._jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
    finally:
        stream.close()


def write_text(spark: SparkSession, path: str, text: str) -> None:
    """Create or replace the file. On S3 the object appears whole when the stream closes."""
    fs, hadoop_path = _fs(spark, path)
    stream = fs.create(hadoop_path, True)  # True: overwrite the file of an earlier run
    try:
        stream.write(text.encode())
    finally:
        stream.close()


def file_size(spark: SparkSession, path: str) -> int | None:
    """Size in bytes, or None when there is no such file."""
    fs, hadoop_path = _fs(spark, path)
    return fs.getFileStatus(hadoop_path).getLen() if fs.exists(hadoop_path) else None


def qualified(spark: SparkSession, path: str) -> str:
    """`path` as Hadoop names it in listings and file sources: with its scheme (file:/tmp/x for /tmp/x)."""
    fs, hadoop_path = _fs(spark, path)
    return str(fs.makeQualified(hadoop_path))


def modified_at(spark: SparkSession, path: str) -> dt.datetime:
    """The file's modification time as a naive UTC datetime; raises the JVM's FileNotFoundException (a
    Py4JJavaError) if absent."""
    fs, hadoop_path = _fs(spark, path)
    millis = fs.getFileStatus(hadoop_path).getModificationTime()
    return dt.datetime.fromtimestamp(millis / 1000, dt.timezone.utc).replace(tzinfo=None)


def list_files(spark: SparkSession, folder: str) -> list[str]:
    """The full paths of the files directly in `folder`; empty when it does not exist."""
    return [str(s.getPath()) for s in _list(spark, folder) if s.isFile()]


def list_dirs(spark: SparkSession, folder: str) -> list[str]:
    """The full paths of the folders directly in `folder`; empty when it does not exist."""
    return [str(s.getPath()) for s in _list(spark, folder) if s.isDirectory()]


def _list(spark: SparkSession, folder: str) -> list[Any]:
    fs, hadoop_path = _fs(spark, folder)
    return list(fs.listStatus(hadoop_path)) if fs.exists(hadoop_path) else []


def delete(spark: SparkSession, path: str) -> None:
    """Remove the file or folder (recursively); nothing when it does not exist."""
    fs, hadoop_path = _fs(spark, path)
    fs.delete(hadoop_path, True)
