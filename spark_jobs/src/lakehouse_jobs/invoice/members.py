"""Members (invoice_load steps 7 and 10): card number -> member -> the dim_member version in effect at
the invoice date, and the re-resolution of older facts whose member was unresolved."""

from __future__ import annotations

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse_jobs import hadoop_fs
from lakehouse_jobs.batch import file_problems
from lakehouse_jobs.delta import retry_on_conflict, tagged_commit
from lakehouse_jobs.invoice.codes import RESOLVED, UNRESOLVED
from lakehouse_jobs.keys import member_key_column, trimmed_column
from lakehouse_jobs.manifest import MANIFEST_NAME, BatchManifest
from lakehouse_jobs.steps import materialise


def read_member_cards(spark: SparkSession, path: str) -> DataFrame:
    """``card_number`` (text, white space trimmed as keys.trimmed_column trims it), ``member_id``
    (keys.member_key: white space trimmed, lower case) of the
    member_card extract at
    `path`: a Parquet file or directory, or a landing batch's _manifest.json, whose files are read exactly
    (a landing prefix also holds other attempts' files) and checked as batch.read_batch checks them (sizes,
    SHA-256, row count). card_number is text in the source (lakehouse_jobs.contracts: leading zeros kept); an integer
    column is read as its digits. Raises ValueError when a column is missing or card_number is neither text
    nor an integer (a floating-point 1.1134891E7 would match no card), or the manifest is not member_card's
    or does not match its files (manifest.ManifestError, a ValueError, for an invalid manifest)."""
    if path.rstrip("/").endswith(MANIFEST_NAME):
        manifest = BatchManifest.from_json(hadoop_fs.read_text(spark, path), source=path)
        if manifest.table != "member_card":
            raise ValueError(f"{path} is a batch of {manifest.table!r}, not member_card")
        if problem := file_problems(spark, manifest.files):
            raise ValueError(f"member_card batch {manifest.batch_id} {problem}")
        if not manifest.files:
            return spark.createDataFrame([], "card_number string, member_id string")
        df = spark.read.parquet(*[entry.path for entry in manifest.files])
        if (rows := df.count()) != manifest.row_count:
            raise ValueError(f"member_card batch {manifest.batch_id}: read {rows} rows, manifest says "
                             f"{manifest.row_count}")
    else:
        df = spark.read.parquet(path)
    missing = {"card_number", "member_id"} - set(df.columns)
    if missing:
        raise ValueError(f"member cards at {path} lack {sorted(missing)} (columns: {df.columns})")
    card_type = df.schema["card_number"].dataType
    if not isinstance(card_type, T.StringType | T.IntegralType) and not (
            isinstance(card_type, T.DecimalType) and card_type.scale == 0):
        raise ValueError(f"member cards at {path}: card_number is {card_type.simpleString()}, not text or an integer")
    return df.select(
        trimmed_column(F.col("card_number").cast("string")).alias("card_number"),
        member_key_column("member_id").alias("member_id"),
    ).where(F.col("card_number").isNotNull() & F.col("member_id").isNotNull())


def member_versions(spark: SparkSession, path: str) -> DataFrame:
    """member_id, member_sk, valid_from, valid_to of every dim_member version at `path` (none when there is
    no table yet: the member pipeline creates it)."""
    if not DeltaTable.isDeltaTable(spark, path):
        return spark.createDataFrame([], "member_id string, member_sk bigint, valid_from timestamp, valid_to timestamp")
    return spark.read.format("delta").load(path).select("member_id", "member_sk", "valid_from", "valid_to")


def resolve_members(invoices: DataFrame, cards: DataFrame, versions: DataFrame) -> DataFrame:
    """invoices (``invoice_number`` unique, ``invoice_date``, ``member_card_number``) -> invoice_number,
    member_sk, member_resolution (invoice.codes.MEMBER_RESOLUTIONS).

    The card's member (cards: read_member_cards; a number mapped to two members is ``ambiguous_card``),
    then that member's dim_member version in effect at the invoice date, 00:00 UTC: valid_from <= t <
    valid_to (``resolved``). With none in effect (the invoice predates the member's first extracted version,
    or falls while the member was absent from the source) the nearest version stands for the member: the
    latest that started before t, else the earliest (``resolved_nearest_version``): the card proves who the
    member is even where the history does not reach. Unresolved: ``no_member_number``, ``unknown_card``,
    ``member_not_loaded`` (member_sk NULL).
    """
    by_card = cards.groupBy("card_number").agg(
        F.count_distinct("member_id").alias("_members"), F.min("member_id").alias("_member_id"))
    t = F.make_timestamp(F.year("invoice_date"), F.month("invoice_date"), F.dayofmonth("invoice_date"),
                         F.lit(0), F.lit(0), F.lit(0), F.lit("UTC"))
    df = (invoices.select("invoice_number", "member_card_number", t.alias("_at"))
          # as text, as printed: "0012345" and "12345" are two cards (either may exist), never guessed equal
          .join(by_card, F.col("member_card_number") == by_card["card_number"], "left")
          .withColumn("_member_id", F.when(F.col("_members") == 1, F.col("_member_id")))
          .join(versions.withColumnRenamed("member_id", "_member_id"), "_member_id", "left"))
    rank = (F.when((F.col("valid_from") <= F.col("_at")) & (F.col("_at") < F.col("valid_to")), 0)
            .when(F.col("valid_from") <= F.col("_at"), 1).otherwise(2))
    df = df.withColumn("_rank", rank)
    nearest = Window.partitionBy("invoice_number").orderBy(
        "_rank", F.when(F.col("_rank") == 1, F.col("valid_from")).desc_nulls_last(), F.col("valid_from").asc())
    df = df.withColumn("_n", F.row_number().over(nearest)).where("_n = 1")
    resolution = (F.when(F.col("member_card_number").isNull(), "no_member_number")
                  .when(F.col("card_number").isNull(), "unknown_card")
                  .when(F.col("_members") > 1, "ambiguous_card")
                  .when(F.col("member_sk").isNull(), "member_not_loaded")
                  .when(F.col("_rank") == 0, "resolved")
                  .otherwise("resolved_nearest_version"))
    return df.select("invoice_number", resolution.alias("member_resolution"), "member_sk").select(
        "invoice_number",
        F.when(F.col("member_resolution").isin(*RESOLVED), F.col("member_sk")).alias("member_sk"),
        "member_resolution",
    )


def fix_up_members(spark: SparkSession, paths: dict[str, str], cards: DataFrame, versions: DataFrame,
                   commit_tag: str) -> tuple[dict[str, int | None], dict[str, int]]:
    """Re-resolve every fact_invoice row whose member_resolution is unresolved (invoice.codes.UNRESOLVED)
    and write what changed into both facts (member_sk, member_resolution, _updated_at), on invoice_number.
    ({"fact_invoice": version or None, "fact_invoice_line": ...}, {new member_resolution: invoices})."""
    facts = spark.read.format("delta").load(paths["fact_invoice"])
    pending = facts.where(F.col("member_resolution").isin(*UNRESOLVED)).select(
        "invoice_number", "member_card_number", F.col("member_resolution").alias("_old"),
        F.to_date(F.col("invoice_date_key").cast("string"), "yyyyMMdd").alias("invoice_date"))
    if pending.isEmpty():
        return {"fact_invoice": None, "fact_invoice_line": None}, {}
    changed = materialise(
        resolve_members(pending, cards, versions).join(pending.select("invoice_number", "_old"), "invoice_number")
        .where(F.col("member_resolution") != F.col("_old")).drop("_old"))
    counts = {r["member_resolution"]: r["count"] for r in changed.groupBy("member_resolution").count().collect()}
    if not counts:
        return {"fact_invoice": None, "fact_invoice_line": None}, {}
    update = {"member_sk": "s.member_sk", "member_resolution": "s.member_resolution",
              "_updated_at": F.current_timestamp()}
    unresolved = ", ".join(f"'{r}'" for r in UNRESOLVED)
    versions_out = {}
    for name in ("fact_invoice", "fact_invoice_line"):
        def merge(name: str = name) -> int | None:
            builder = (DeltaTable.forPath(spark, paths[name]).alias("t")
                       .merge(changed.alias("s"), "t.invoice_number = s.invoice_number")
                       .whenMatchedUpdate(condition=f"t.member_resolution IN ({unresolved})", set=update))
            return tagged_commit(spark, builder, paths[name], commit_tag)

        versions_out[name] = retry_on_conflict(merge, f"member fix-up of {paths[name]}")
    return versions_out, counts
