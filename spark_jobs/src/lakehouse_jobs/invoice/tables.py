"""The retail invoice star schema (Kimball) in Delta, declared once: two fact tables, six dimensions and the
job's two bookkeeping tables. ``invoice_load`` creates them with ``delta.ensure_table``;
docs/invoice-star-schema.md specifies them (its column tables and ER diagram are checked against these
declarations by tests/spark_jobs/invoice/test_invoice_tables.py).

Shape of the model (docs/invoice-star-schema.md says why):
- ``fact_invoice_line``: one row per printed invoice line; ``fact_invoice``: one row per invoice (the
  header's own measures: totals, rates, amount paid, which do not add up over lines). Both carry the same
  dimension keys, so either answers "by member / product / payment method / date" without joining the other.
- Surrogate keys are identity columns (BIGINT) assigned by Delta on insert, except ``dim_date``
  (``date_key`` = yyyymmdd, the conventional smart key of a date dimension) and ``dim_currency`` (the ISO
  4217 code, a stable international standard). ``member_sk`` references ``dim_member`` (lakehouse_jobs.tables),
  the SCD2 member dimension the member pipeline keeps.
- A foreign key is NULL when the invoice does not print that element (no due date, no payment method, no
  ship-to, no member number) or, for ``member_sk``, when the member cannot be resolved yet:
  ``member_resolution`` says which. Every query joins optional roles with LEFT JOIN.
- Money is DECIMAL(18,2) in the invoice's currency (no conversion: amounts of different currencies are
  never added); quantities DECIMAL(18,6) (the parser reads up to 6 decimals: nothing is rounded away); rates
  DECIMAL(9,6) as fractions (10% is 0.100000). An adjustment the invoice does not print is NULL, never 0.
- Personal data: bill-to and ship-to names and addresses live only in ``dim_party_address``, AES-256-GCM
  encrypted, found by a keyed hash (lakehouse_jobs.pii), as the member tables keep theirs.
- Deletion vectors, log and file retention, no change data feed: the properties of every table
  (``tables.COMMON_PROPERTIES``). Statistics only on columns that identify nobody.
- No partitioning, no liquid clustering (docs/invoice-star-schema.md, "Clustering"): at 10,000 invoices a
  day the line fact grows by under 1 GB a year, and each daily load appends files holding the invoices that
  arrived that day, so min/max statistics on ``invoice_date_key`` already skip files for date ranges.
"""

from __future__ import annotations

from lakehouse_jobs.invoice.text_layer import REASONS as PARSER_REASONS
from lakehouse_jobs.tables import Field, TableSpec

MONEY = "DECIMAL(18,2)"
QUANTITY = "DECIMAL(18,6)"
RATE = "DECIMAL(9,6)"


# dim_date's range: invoices dated outside it are quarantined (date_out_of_range), so every date key joins
FIRST_DATE = "2000-01-01"
LAST_DATE = "2035-12-31"

_HEX64 = "^[0-9a-f]{64}$"


# How an invoice's member number became member_sk (invoice_load.resolve_members gives the rules).
MEMBER_RESOLUTIONS = (
    "resolved",                  # the dim_member version in effect at the invoice date
    "resolved_nearest_version",  # no version in effect then (the invoice predates the member's history):
                                 # the nearest one, the latest before the date or else the earliest
    "no_member_number",          # the invoice prints no member number (a walk-in customer)
    "unknown_card",              # the number is not in member_card (yet)
    "ambiguous_card",            # member_card maps the number to more than one member
    "member_not_loaded",         # the card's member has no row in dim_member (yet)
)
RESOLVED = ("resolved", "resolved_nearest_version")
# re-resolved on every run: the member card or the member may arrive later (late-arriving dimension rows)
UNRESOLVED = ("unknown_card", "ambiguous_card", "member_not_loaded")


# the codes of invoice.document.check_arithmetic (its docstring), without their ":<where>" suffix
ARITHMETIC_REASONS = (
    "required_field_missing", "unknown_currency", "line_number_sequence", "minor_unit_mismatch",
    "line_amount_mismatch", "subtotal_mismatch", "adjustment_rate_mismatch", "total_mismatch", "balance_mismatch",
)
# the job's own: a date dim_date does not cover, a number too large for its column, an invoice that fails
# allocation or the parser in an unforeseen way (a bug: the detail names the exception), a file that
# changed between the job's two reads of it
JOB_REASONS = ("date_out_of_range", "amount_out_of_range", "parser_error", "changed_during_run", "too_large",
               "parse_timeout")
QUARANTINE_REASONS = tuple(sorted(set(PARSER_REASONS) | set(ARITHMETIC_REASONS) | set(JOB_REASONS)))


LEDGER_STATUSES = ("loaded", "quarantined", "superseded")


PAYMENT_CATEGORIES = ("card", "cash", "cheque", "bank_transfer", "e_wallet", "stored_value", "other")


def _in(column: str, values: tuple[str, ...]) -> str:
    return "{} IN ({})".format(column, ", ".join(f"'{v}'" for v in values))


def _date_key_in_range(column: str) -> str:
    low, high = FIRST_DATE.replace("-", ""), LAST_DATE.replace("-", "")
    return f"{column} IS NULL OR {column} BETWEEN {low} AND {high}"


# ------------------------------------------------------------------------------------------ columns


def _lineage(what: str) -> tuple[Field, ...]:
    return (
        Field("source_path", "STRING", nullable=False, comment=f"the PDF file {what} came from, as listed"),
        Field("source_sha256", "STRING", nullable=False,
              comment="SHA-256 (hex) of that file's bytes: the same content is processed once"),
        Field("_batch_id", "STRING", nullable=False, comment=f"the invoice_load run that loaded {what}"),
        Field("_updated_at", "TIMESTAMP", nullable=False,
              comment="when the row was last written (a re-issue, or the member resolved late)"),
    )


def _dimension_keys(line: bool) -> tuple[Field, ...]:
    return (
        Field("invoice_date_key", "INT", nullable=False, comment="dim_date key (yyyymmdd) of the invoice date"),
        Field("due_date_key", "INT",
              comment="dim_date key (yyyymmdd) of the due date: as printed, else the invoice date plus the period "
                      "the printed terms state (invoice.document.due_date_from_terms); null when neither"),
        Field("member_sk", "BIGINT",
              comment="dim_member's surrogate key: the member's version in effect at the invoice date; null "
                      "unless member_resolution is resolved or resolved_nearest_version"),
        Field("member_resolution", "STRING", nullable=False,
              comment="how the member number became member_sk: " + ", ".join(MEMBER_RESOLUTIONS)),
        *((Field("product_key", "BIGINT", nullable=False, comment="dim_product key of the line's description"),)
          if line else ()),
        Field("payment_method_key", "BIGINT", comment="dim_payment_method key; null when none is printed"),
        Field("seller_key", "BIGINT", comment="dim_seller key of the seller block; null when none is printed"),
        Field("bill_to_key", "BIGINT",
              comment="dim_party_address key in the bill-to role; null when no Bill To: block is printed"),
        Field("ship_to_key", "BIGINT",
              comment="dim_party_address key in the ship-to role; null when no Ship To: block is printed"),
        Field("currency_code", "STRING", nullable=False, comment="dim_currency key: ISO 4217 code of every amount"),
    )


_KEY_CHECKS = {
    "member_resolution_known": _in("member_resolution", MEMBER_RESOLUTIONS),
    "member_sk_iff_resolved": f"(member_sk IS NOT NULL) = ({_in('member_resolution', RESOLVED)})",
    "invoice_date_in_dim_date": _date_key_in_range("invoice_date_key"),
    "due_date_in_dim_date": _date_key_in_range("due_date_key"),
    "currency_code_is_iso": "currency_code RLIKE '^[A-Z]{3}$'",
    "source_sha256_is_hex": f"source_sha256 RLIKE '{_HEX64}'",
}

# ---------------------------------------------------------------------------------------------- facts


FACT_INVOICE_LINE = TableSpec(
    name="fact_invoice_line",
    description="Retail invoice lines: one row per line printed on an invoice (invoice_number, line_number), "
                "with the header's discount, tax and shipping allocated to the lines by largest remainder, "
                "so that the lines' net amounts add up to the invoice total exactly.",
    fields=(
        Field("invoice_number", "STRING", nullable=False,
              comment="the invoice's number as printed (degenerate dimension; with line_number the key)"),
        Field("line_number", "INT", nullable=False, comment="position of the line on the invoice, from 1"),
        *_dimension_keys(line=True),
        Field("quantity", QUANTITY, nullable=False, comment="quantity as printed"),
        Field("unit_price", MONEY, nullable=False, comment="unit price as printed"),
        Field("line_amount", MONEY, nullable=False,
              comment="amount as printed: quantity x unit price rounded half up to the currency's minor unit"),
        Field("discount_amount", MONEY,
              comment="this line's part of the invoice's discount (largest remainder over line amounts); null "
                      "when the invoice prints no discount"),
        Field("tax_amount", MONEY, comment="this line's part of the invoice's tax; null when none is printed"),
        Field("shipping_amount", MONEY,
              comment="this line's part of the invoice's shipping; null when none is printed"),
        Field("net_amount", MONEY, nullable=False,
              comment="line_amount - discount_amount + tax_amount + shipping_amount: the line's share of the "
                      "invoice total"),
        *_lineage("the line"),
    ),
    constraints={
        **_KEY_CHECKS,
        "line_number_from_1": "line_number >= 1",
        "net_amount_adds_up": "net_amount = line_amount - coalesce(discount_amount, 0) + coalesce(tax_amount, 0) "
                              "+ coalesce(shipping_amount, 0)",
    },
    stats_columns=("invoice_number", "line_number", "invoice_date_key", "product_key", "currency_code",
                   "_batch_id", "_updated_at"),
)


FACT_INVOICE = TableSpec(
    name="fact_invoice",
    description="Retail invoices: one row per invoice number (the header), with the measures printed once per "
                "invoice (subtotal, discount, tax, shipping, total, amount paid, balance due). A corrected "
                "re-issue replaces the row.",
    fields=(
        Field("invoice_number", "STRING", nullable=False, comment="the invoice's number as printed (the key)"),
        *_dimension_keys(line=False),
        Field("member_card_number", "BIGINT", pii="quasi",
              comment="the member number as printed (a member_card.card_number); null when none is printed"),
        Field("po_number", "STRING", comment="purchase order number as printed; null when none"),
        Field("payment_terms", "STRING", comment="the value of the Payment Terms: row as printed; null when none"),
        Field("terms", "STRING", comment="the Terms: block as printed, lines joined with a line feed; null when none"),
        Field("line_count", "INT", nullable=False, comment="number of lines (rows of fact_invoice_line)"),
        Field("subtotal", MONEY, nullable=False, comment="sum of the line amounts"),
        Field("discount_rate", RATE,
              comment="printed discount rate as a fraction (10% = 0.100000); null when none or several are printed"),
        Field("discount_amount", MONEY, comment="discount (an allowance: reduces the total); null when none"),
        Field("tax_rate", RATE, comment="printed tax rate as a fraction; null when none or several are printed"),
        Field("tax_amount", MONEY, comment="tax (a charge: adds to the total); null when none"),
        Field("shipping_rate", RATE, comment="printed shipping rate as a fraction; null when none or several"),
        Field("shipping_amount", MONEY, comment="shipping (a charge); null when none"),
        Field("total", MONEY, nullable=False,
              comment="subtotal - discount_amount + tax_amount + shipping_amount"),
        Field("amount_paid", MONEY, comment="amount paid as printed; null when no Amount Paid row is printed"),
        Field("balance_due", MONEY, nullable=False, comment="total - amount_paid"),
        *_lineage("the invoice"),
    ),
    constraints={
        **_KEY_CHECKS,
        "line_count_from_1": "line_count >= 1",
        "total_adds_up": "total = subtotal - coalesce(discount_amount, 0) + coalesce(tax_amount, 0) "
                         "+ coalesce(shipping_amount, 0)",
        "balance_adds_up": "balance_due = total - coalesce(amount_paid, 0)",
        "adjustments_not_negative": "coalesce(discount_amount, 0) >= 0 AND coalesce(tax_amount, 0) >= 0 "
                                    "AND coalesce(shipping_amount, 0) >= 0",
        "rate_has_amount": "(discount_rate IS NULL OR discount_amount IS NOT NULL) AND (tax_rate IS NULL OR "
                           "tax_amount IS NOT NULL) AND (shipping_rate IS NULL OR shipping_amount IS NOT NULL)",
    },
    stats_columns=("invoice_number", "invoice_date_key", "currency_code", "member_resolution", "_batch_id",
                   "_updated_at"),
)

# ------------------------------------------------------------------------------------------ dimensions


_AUDIT = (
    Field("_batch_id", "STRING", nullable=False, comment="the invoice_load run that inserted the row"),
    Field("_updated_at", "TIMESTAMP", nullable=False, comment="when the row was last written"),
)


DIM_DATE = TableSpec(
    name="dim_date",
    description=f"Calendar dates from {FIRST_DATE} to {LAST_DATE}, one row per day, generated (not loaded "
                "from invoices); played in the invoice-date and due-date roles.",
    fields=(
        Field("date_key", "INT", nullable=False, comment="yyyymmdd (20240101): the key"),
        Field("full_date", "DATE", nullable=False, comment="the date"),
        Field("year", "INT", nullable=False, comment="calendar year"),
        Field("quarter", "INT", nullable=False, comment="calendar quarter, 1-4"),
        Field("month", "INT", nullable=False, comment="month of the year, 1-12"),
        Field("month_name", "STRING", nullable=False, comment="English month name (January)"),
        Field("year_month", "STRING", nullable=False, comment="yyyy-MM (2024-01): a month to group by"),
        Field("day_of_month", "INT", nullable=False, comment="day of the month, 1-31"),
        Field("day_of_year", "INT", nullable=False, comment="day of the year, 1-366"),
        Field("day_of_week", "INT", nullable=False, comment="ISO 8601 day of the week: 1 Monday to 7 Sunday"),
        Field("day_name", "STRING", nullable=False, comment="English day name (Monday)"),
        Field("iso_week", "INT", nullable=False, comment="ISO 8601 week of the year, 1-53"),
        Field("iso_year", "INT", nullable=False,
              comment="ISO 8601 week-numbering year (the year of the week's Thursday)"),
        Field("is_weekend", "BOOLEAN", nullable=False, comment="Saturday or Sunday"),
        Field("first_day_of_month", "DATE", nullable=False, comment="the month's first day"),
        Field("last_day_of_month", "DATE", nullable=False, comment="the month's last day"),
    ),
    constraints={
        "date_key_is_the_date": "date_key = year(full_date) * 10000 + month(full_date) * 100 + day(full_date)",
        "in_range": f"full_date BETWEEN DATE'{FIRST_DATE}' AND DATE'{LAST_DATE}'",
        "day_of_week_iso": "day_of_week BETWEEN 1 AND 7",
    },
    stats_columns=("date_key", "full_date", "year", "year_month"),
)


DIM_PRODUCT = TableSpec(
    name="dim_product",
    description="Products as invoices describe them: one row per normalised line description (SCD type 1: "
                "an attribute from a future product master is overwritten in place).",
    fields=(
        Field("product_key", "BIGINT", nullable=False, identity=True, comment="surrogate key"),
        Field("product_nk", "STRING", nullable=False,
              comment="natural key: the description trimmed, blanks collapsed to one space, upper case"),
        Field("product_name", "STRING", nullable=False, comment="the description as first printed"),
        *_AUDIT,
    ),
    constraints={"product_nk_normalised": "product_nk = upper(regexp_replace(trim(product_nk), '\\\\s+', ' '))"},
    stats_columns=("product_nk", "_batch_id", "_updated_at"),
)


DIM_PAYMENT_METHOD = TableSpec(
    name="dim_payment_method",
    description="Payment methods printed on invoices (Payment Method:, or a method named by Payment Terms:), "
                "one row per method (SCD type 1).",
    fields=(
        Field("payment_method_key", "BIGINT", nullable=False, identity=True, comment="surrogate key"),
        Field("payment_method_nk", "STRING", nullable=False,
              comment="natural key: the method trimmed, blanks collapsed, lower case"),
        Field("payment_method_name", "STRING", nullable=False, comment="the method as first printed (Visa)"),
        Field("payment_category", "STRING", nullable=False,
              comment="card, cash, cheque, bank_transfer, e_wallet, stored_value or other"),
        *_AUDIT,
    ),
    constraints={"payment_category_known": _in("payment_category", PAYMENT_CATEGORIES)},
    stats_columns=("payment_method_nk", "payment_category", "_batch_id"),
)


DIM_SELLER = TableSpec(
    name="dim_seller",
    description="Sellers (stores) as invoices print them: one row per name and address (SCD type 1). A "
                "business's name and address are not personal data and are kept in plaintext.",
    fields=(
        Field("seller_key", "BIGINT", nullable=False, identity=True, comment="surrogate key"),
        Field("seller_hash", "STRING", nullable=False,
              comment="natural key: SHA-256 (hex) of the normalised name and address lines"),
        Field("seller_name", "STRING", nullable=False, comment="the seller's name as first printed"),
        Field("seller_address", "STRING", comment="the address lines as first printed, joined with a line feed"),
        Field("country_code", "STRING",
              comment="ISO 3166-1 alpha-2 code when the last address line names exactly a country, else null"),
        *_AUDIT,
    ),
    constraints={"seller_hash_is_hex": f"seller_hash RLIKE '{_HEX64}'",
                 "country_code_is_iso": "country_code IS NULL OR country_code RLIKE '^[A-Z]{2}$'"},
    stats_columns=("country_code", "_batch_id", "_updated_at"),
)


DIM_PARTY_ADDRESS = TableSpec(
    name="dim_party_address",
    description="Customers' names and addresses from Bill To: and Ship To: blocks, one row per name and "
                "address (role-playing: fact columns bill_to_key and ship_to_key). Personal data: name and "
                "address only as AES-256-GCM ciphertext, found by a keyed hash (docs/pii.md).",
    fields=(
        Field("party_key", "BIGINT", nullable=False, identity=True, comment="surrogate key"),
        Field("party_hash", "STRING", nullable=False, pii="quasi",
              comment="natural key: HMAC-SHA-256 (hex) of the normalised name and address lines"),
        Field("name_enc", "BINARY", nullable=False, pii="direct",
              comment="the name as first printed, AES-256-GCM ciphertext"),
        Field("address_enc", "BINARY", pii="direct",
              comment="the address lines as first printed, joined with a line feed, AES-256-GCM ciphertext"),
        Field("country_code", "STRING", pii="quasi",
              comment="ISO 3166-1 alpha-2 code when the last address line names exactly a country, else null"),
        *_AUDIT,
    ),
    constraints={"party_hash_is_hmac": f"party_hash RLIKE '{_HEX64}'",
                 "country_code_is_iso": "country_code IS NULL OR country_code RLIKE '^[A-Z]{2}$'"},
    # never the hash: it identifies a person, and the log's statistics outlive an erasure
    stats_columns=("country_code", "_batch_id", "_updated_at"),
)


DIM_CURRENCY = TableSpec(
    name="dim_currency",
    description="Currencies the invoice parser knows (invoice.document.CURRENCY_EXPONENTS), one row per ISO "
                "4217 code; names and numeric codes from pycountry (ISO 4217), minor units from the parser's "
                "reviewed table (pycountry has none).",
    fields=(
        Field("currency_code", "STRING", nullable=False, comment="ISO 4217 alphabetic code (HKD): the key"),
        Field("currency_name", "STRING", nullable=False, comment="ISO 4217 name (Hong Kong Dollar)"),
        Field("numeric_code", "STRING", nullable=False, comment="ISO 4217 numeric code, 3 digits (344)"),
        Field("minor_unit", "INT", nullable=False,
              comment="ISO 4217 exponent: decimals of the smallest unit (2 for HKD, 0 for JPY)"),
        Field("printed_prefix", "STRING", comment="the prefix invoices print amounts with (HK$)"),
        *_AUDIT,
    ),
    constraints={"currency_code_is_iso": "currency_code RLIKE '^[A-Z]{3}$'",
                 "numeric_code_is_3_digits": "numeric_code RLIKE '^[0-9]{3}$'",
                 "minor_unit_range": "minor_unit BETWEEN 0 AND 4"},
    stats_columns=("currency_code", "_batch_id", "_updated_at"),
)

# -------------------------------------------------------------------------------------- bookkeeping


INVOICE_QUARANTINE = TableSpec(
    name="invoice_quarantine",
    description="Invoice files that were not loaded because they cannot be read exactly or do not add up: one "
                "row per file content (source_sha256), with a stable reason code. Nothing of them is in the facts.",
    fields=(
        Field("source_path", "STRING", nullable=False, comment="the file, as listed"),
        Field("source_sha256", "STRING", nullable=False, comment="SHA-256 (hex) of its bytes (the key)"),
        Field("invoice_number", "STRING", comment="the invoice number when the file could be read that far"),
        Field("reason", "STRING", nullable=False,
              comment="stable code: the parser's reason, check_arithmetic's first code, or the job's own"),
        Field("detail", "STRING",
              comment="what exactly is wrong, with any text quoted from the document replaced by '…'"),
        Field("detail_enc", "BINARY", pii="direct",
              comment="the detail unredacted (it may quote a name or an address), AES-256-GCM ciphertext"),
        Field("_batch_id", "STRING", nullable=False, comment="the invoice_load run that quarantined it"),
        Field("quarantined_at", "TIMESTAMP", nullable=False, comment="when"),
    ),
    constraints={"reason_known": _in("reason", QUARANTINE_REASONS),
                 "source_sha256_is_hex": f"source_sha256 RLIKE '{_HEX64}'"},
    stats_columns=("source_sha256", "reason", "_batch_id", "quarantined_at"),
)


INVOICE_LEDGER = TableSpec(
    name="invoice_ledger",
    description="Every invoice file the job processed, one row per content (source_sha256): a file whose "
                "content is here is never parsed again. Originals are neither moved nor deleted.",
    fields=(
        Field("source_sha256", "STRING", nullable=False, comment="SHA-256 (hex) of the file's bytes (the key)"),
        Field("source_path", "STRING", nullable=False, comment="where the content was first seen"),
        Field("file_size", "BIGINT", nullable=False, comment="its size in bytes"),
        Field("file_modified_at", "TIMESTAMP", nullable=False, comment="its modification time as listed"),
        Field("status", "STRING", nullable=False,
              comment="loaded, quarantined, or superseded (a later file of the same run re-issued the invoice)"),
        Field("invoice_number", "STRING", comment="the invoice number, when the file could be read that far"),
        Field("processed_at", "TIMESTAMP", nullable=False, comment="when the run processed it"),
        Field("_batch_id", "STRING", nullable=False, comment="the invoice_load run"),
    ),
    constraints={"status_known": _in("status", LEDGER_STATUSES),
                 "loaded_has_number": "status <> 'loaded' OR invoice_number IS NOT NULL",
                 "source_sha256_is_hex": f"source_sha256 RLIKE '{_HEX64}'"},
    stats_columns=("source_sha256", "source_path", "status", "processed_at", "_batch_id"),
)


INVOICE_TABLES: dict[str, TableSpec] = {t.name: t for t in (
    FACT_INVOICE_LINE, FACT_INVOICE, DIM_DATE, DIM_PRODUCT, DIM_PAYMENT_METHOD, DIM_SELLER, DIM_PARTY_ADDRESS,
    DIM_CURRENCY, INVOICE_QUARANTINE, INVOICE_LEDGER,
)}
