"""The invoice tables' code lists: what a status or reason column may hold. lakehouse_jobs.invoice.tables
turns each into a CHECK constraint (``<column> IN (...)``) and a column comment, so a code the job writes is
one of these or the commit fails; the spec (docs/invoice-star-schema.md) lists them from the same tuples."""

from __future__ import annotations

from lakehouse_jobs.invoice.text_layer import REASONS as PARSER_REASONS

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
