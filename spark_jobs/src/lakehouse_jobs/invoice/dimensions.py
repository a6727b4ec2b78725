"""Dimensions (invoice_load step 6): dim_date and dim_currency generated, new natural keys of
products, payment methods, payment terms, sellers and parties inserted, and the headers' dimension keys
looked up."""

from __future__ import annotations

import datetime as dt

import pycountry
from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from lakehouse_jobs import pii
from lakehouse_jobs.delta import retry_on_conflict, tagged_commit
from lakehouse_jobs.invoice.document import CURRENCY_EXPONENTS
from lakehouse_jobs.invoice.printed_values import CURRENCY_PREFIXES
from lakehouse_jobs.invoice.tables import DIM_CURRENCY, DIM_DATE, FIRST_DATE, LAST_DATE
from lakehouse_jobs.steps import materialise

# part of the parties' keyed hashes: change it when the normalisation below changes
PARTY_HASH_VERSION = "invoice-party-1"


# payment methods (invoice.pdf.PAYMENT_METHODS, casefolded) -> dim_payment_method.payment_category
PAYMENT_CATEGORY = {
    **dict.fromkeys(("visa", "mastercard", "american express", "unionpay", "jcb", "diners club", "discover",
                     "credit card", "debit card"), "card"),
    "cash": "cash", "cheque": "cheque", "check": "cheque",
    **dict.fromkeys(("bank transfer", "wire transfer", "fps"), "bank_transfer"),
    **dict.fromkeys(("paypal", "alipay", "wechat pay", "apple pay", "google pay"), "e_wallet"),
    "octopus": "stored_value",
}


def normalised(text: Column) -> Column:
    """Trimmed, every run of whitespace one space, upper case: how a printed text becomes a natural key."""
    return F.upper(F.regexp_replace(F.trim(text), r"\s+", " "))


def date_key(d: Column) -> Column:
    """dim_date's key of a date: yyyymmdd as an int (20240101); null for null."""
    return (F.year(d) * 10000 + F.month(d) * 100 + F.dayofmonth(d)).cast("int")


def date_rows(spark: SparkSession) -> DataFrame:
    """dim_date's rows, FIRST_DATE to LAST_DATE (ISO 8601 weeks; English names)."""
    days = spark.sql(f"SELECT explode(sequence(DATE'{FIRST_DATE}', DATE'{LAST_DATE}', INTERVAL 1 DAY)) AS full_date")
    d = F.col("full_date")
    iso_dow = ((F.dayofweek(d) + 5) % 7 + 1)  # Spark: 1 = Sunday; ISO: 1 = Monday, 7 = Sunday
    return days.select(
        date_key(d).alias("date_key"), d,
        F.year(d).alias("year"), F.quarter(d).alias("quarter"), F.month(d).alias("month"),
        F.date_format(d, "MMMM").alias("month_name"), F.date_format(d, "yyyy-MM").alias("year_month"),
        F.dayofmonth(d).alias("day_of_month"), F.dayofyear(d).alias("day_of_year"),
        iso_dow.alias("day_of_week"), F.date_format(d, "EEEE").alias("day_name"),
        F.weekofyear(d).alias("iso_week"),
        F.year(F.date_add(d, 4 - iso_dow)).alias("iso_year"),  # the year of the week's Thursday (ISO 8601)
        (iso_dow >= 6).alias("is_weekend"),
        F.trunc(d, "month").alias("first_day_of_month"), F.last_day(d).alias("last_day_of_month"),
    ).select(*DIM_DATE.column_names)


def currency_rows(spark: SparkSession, batch_id: str) -> DataFrame:
    """dim_currency's rows: the parser's currencies (CURRENCY_EXPONENTS, their reviewed minor units), names
    and numeric codes from pycountry's ISO 4217 data, the prefix invoices print."""
    prefixes = {code: prefix for prefix, code in CURRENCY_PREFIXES.items()}
    rows = []
    for code, exponent in sorted(CURRENCY_EXPONENTS.items()):
        currency = pycountry.currencies.get(alpha_3=code)
        rows.append({"currency_code": code, "currency_name": currency.name, "numeric_code": currency.numeric,
                     "minor_unit": exponent, "printed_prefix": prefixes.get(code), "_batch_id": batch_id})
    return spark.createDataFrame(rows, DIM_CURRENCY.schema_ddl).withColumn("_updated_at", F.current_timestamp())


def upsert_changed(spark: SparkSession, path: str, rows: DataFrame, keys: list[str], compare: list[str],
                   commit_tag: str) -> int | None:
    """MERGE `rows` into the table at `path` on `keys`: insert new keys, update rows whose `compare` columns
    differ (SCD type 1). Commits nothing, and returns None, when nothing differs; else the version."""
    def merge() -> int | None:
        current = spark.read.format("delta").load(path).select(*keys, *compare)
        # set difference: nulls compare equal, as "unchanged" needs
        differing = rows.select(*keys, *compare).exceptAll(current)
        changed = materialise(rows.join(differing.select(*keys), keys, "left_semi"))
        if changed.isEmpty():
            return None
        on = " AND ".join(f"t.{k} = s.{k}" for k in keys)
        values = {c: f"s.{c}" for c in rows.columns}
        builder = (DeltaTable.forPath(spark, path).alias("t").merge(changed.alias("s"), on)
                   .whenMatchedUpdate(set=values).whenNotMatchedInsert(values=values))
        return tagged_commit(spark, builder, path, commit_tag)

    return retry_on_conflict(merge, f"MERGE into {path}")


def seed_dim_date(spark: SparkSession, path: str, commit_tag: str) -> int | None:
    """Insert dim_date's missing days (all of them on the first run); the version, or None when complete."""
    expected = (dt.date.fromisoformat(LAST_DATE) - dt.date.fromisoformat(FIRST_DATE)).days + 1
    if spark.read.format("delta").load(path).count() == expected:
        return None

    def merge() -> int | None:
        missing = date_rows(spark).join(spark.read.format("delta").load(path).select("date_key"), "date_key",
                                        "left_anti")
        builder = (DeltaTable.forPath(spark, path).alias("t").merge(missing.alias("s"), "t.date_key = s.date_key")
                   .whenNotMatchedInsertAll())
        return tagged_commit(spark, builder, path, commit_tag)

    return retry_on_conflict(merge, f"MERGE into {path}")


def insert_new_keys(spark: SparkSession, path: str, rows: DataFrame, key: str, batch_id: str,
                    commit_tag: str) -> int | None:
    """Insert the `rows` (one per `key`, a dimension's natural key) the dimension at `path` lacks; the
    identity column assigns their surrogate keys. Existing rows are kept as they are: every attribute these
    dimensions take from an invoice is its natural key's own content (a normalised form of it). Returns the
    version, or None when every key was there (nothing committed)."""
    def merge() -> int | None:
        new = materialise(rows.join(spark.read.format("delta").load(path).select(key), key, "left_anti"))
        if new.isEmpty():
            return None
        values = {c: f"s.{c}" for c in rows.columns} | {
            "_batch_id": F.lit(batch_id), "_updated_at": F.current_timestamp()}
        builder = (DeltaTable.forPath(spark, path).alias("t").merge(new.alias("s"), f"t.{key} = s.{key}")
                   .whenNotMatchedInsert(values=values))
        return tagged_commit(spark, builder, path, commit_tag)

    return retry_on_conflict(merge, f"MERGE into {path}")


def product_rows(lines: DataFrame) -> DataFrame:
    """dim_product's new-key candidates from exploded lines (``description``): product_nk, product_name
    (the first printed form, by sort order, for a deterministic choice)."""
    return (lines.select(normalised(F.col("description")).alias("product_nk"), "description")
            .groupBy("product_nk").agg(F.min("description").alias("product_name")))


def payment_method_rows(headers: DataFrame) -> DataFrame:
    """dim_payment_method's candidates from headers (``payment_method``): nk lower case, category by
    PAYMENT_CATEGORY (else other)."""
    categories = F.create_map(*[F.lit(x) for kv in PAYMENT_CATEGORY.items() for x in kv])
    return (headers.where(F.col("payment_method").isNotNull())
            .select(F.lower(normalised(F.col("payment_method"))).alias("payment_method_nk"), "payment_method")
            .groupBy("payment_method_nk").agg(F.min("payment_method").alias("payment_method_name"))
            .withColumn("payment_category",
                        F.coalesce(F.try_element_at(categories, F.col("payment_method_nk")), F.lit("other"))))


def terms_hash() -> Column:
    """dim_invoice_terms' natural key: SHA-256 (hex) of ``payment_terms`` and ``terms`` as read, as the UTF-8
    of the JSON object ``{"payment_terms":...,"terms":...}`` with nulls written and no spaces (Python's
    ``json.dumps(pair, separators=(",", ":"), ensure_ascii=False)``). The pair of neither has a hash too, so
    every invoice gets a key. Nulls are written whatever spark.sql.jsonGenerator.ignoreNullFields says: a
    session that left them out would hash a known pair anew and insert it twice."""
    return F.sha2(F.to_json(F.struct("payment_terms", "terms"), {"ignoreNullFields": "false"}), 256)


def invoice_terms_rows(headers: DataFrame) -> DataFrame:
    """dim_invoice_terms' candidates from headers with ``terms_hash``: terms_hash, payment_terms, terms."""
    return headers.select("terms_hash", "payment_terms", "terms").dropDuplicates(["terms_hash"])


def _lines(column: str) -> Column:
    """Address lines joined with a line feed; null when there are none."""
    return F.when(F.size(column) > 0, F.array_join(column, "\n"))


def _party_key_text(role: str) -> Column:
    """The normalised name and address lines of a party, as JSON (unambiguous): what its hash is of. A null
    field is left out whatever spark.sql.jsonGenerator.ignoreNullFields says (Spark's default, so the
    hashes of existing rows stand): a session that wrote it would hash a known party anew."""
    return F.to_json(F.struct(normalised(F.col(f"{role}_name")).alias("name"),
                              F.transform(f"{role}_address", normalised).alias("address")),
                     {"ignoreNullFields": "true"})


def seller_hash() -> Column:
    """dim_seller's natural key: SHA-256 (hex) of the normalised seller; null without a seller. Unkeyed: a
    business's name and address are public."""
    return F.when(F.col("seller_name").isNotNull(), F.sha2(_party_key_text("seller"), 256))


def party_hash(role: str) -> Column:
    """dim_party_address's natural key of the bill_to or ship_to party: HMAC-SHA-256 of its normalised name and
    address (needs pii.with_keys' columns); null without that party."""
    return F.when(F.col(f"{role}_name").isNotNull(),
                  pii.keyed_hash(F.concat(F.lit(f"{PARTY_HASH_VERSION}|"), _party_key_text(role))))


def seller_rows(headers: DataFrame) -> DataFrame:
    """dim_seller's candidates from headers with ``seller_hash``."""
    return (headers.where(F.col("seller_hash").isNotNull())
            .groupBy("seller_hash").agg(F.min(F.struct(
                F.col("seller_name"), _lines("seller_address").alias("seller_address"),
                F.col("seller_country_code").alias("country_code"))).alias("s"))
            .select("seller_hash", "s.*"))


def party_rows(headers: DataFrame) -> DataFrame:
    """dim_party_address's candidates from headers (with pii.with_keys' columns, and ``bill_to_hash`` and
    ``ship_to_hash``): one row per party hash (party_hash, name_enc, address_enc, country_code), name and
    address encrypted; no key column in the output."""
    parties = None
    for role in ("bill_to", "ship_to"):
        part = headers.where(F.col(f"{role}_hash").isNotNull()).select(
            F.col(f"{role}_hash").alias("party_hash"), F.col(f"{role}_name").alias("_name"),
            _lines(f"{role}_address").alias("_address"),
            F.col(f"{role}_country_code").alias("country_code"),
            *[c for c in headers.columns if c.startswith("_pii_")])
        parties = part if parties is None else parties.unionByName(part)
    first = Window.partitionBy("party_hash").orderBy("_name", "_address")
    return (parties.withColumn("_n", F.row_number().over(first)).where("_n = 1")
            .select("party_hash", pii.encrypt("_name").alias("name_enc"), pii.encrypt("_address").alias("address_enc"),
                    "country_code"))


def dimension_keys(spark: SparkSession, paths: dict[str, str], headers: DataFrame) -> DataFrame:
    """Headers (with ``terms_hash``, ``seller_hash``, ``bill_to_hash``, ``ship_to_hash``) + payment_method_key,
    invoice_terms_key, seller_key, bill_to_key, ship_to_key: looked up by natural key in the dimensions as they
    are now (after insert_new_keys). NULL where the invoice prints no such element (invoice_terms_key never)."""
    def dim(name: str, key: str, nk: str, alias_key: str, alias_nk: str) -> DataFrame:
        return spark.read.format("delta").load(paths[name]).select(
            F.col(key).alias(alias_key), F.col(nk).alias(alias_nk))

    out = headers.withColumn("_pm_nk", F.lower(normalised(F.col("payment_method"))))
    out = out.join(F.broadcast(dim("dim_payment_method", "payment_method_key", "payment_method_nk",
                                   "payment_method_key", "_pm_nk")), "_pm_nk", "left")
    out = out.join(F.broadcast(dim("dim_invoice_terms", "invoice_terms_key", "terms_hash", "invoice_terms_key",
                                   "terms_hash")), "terms_hash", "left")
    out = out.join(dim("dim_seller", "seller_key", "seller_hash", "seller_key", "seller_hash"), "seller_hash", "left")
    for role in ("bill_to", "ship_to"):
        out = out.join(dim("dim_party_address", "party_key", "party_hash", f"{role}_key", f"{role}_hash"),
                       f"{role}_hash", "left")
    return out.drop("_pm_nk")
