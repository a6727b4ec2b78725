"""The labels the invoice parser (``invoice.pdf``) recognises, by family: the layout knowledge it has.

Each family maps what invoices of the layout print for a field to the field's name (issue 24 item 1): the
seed's labels, the generator's defaults and their common synonyms (invoice-generator.com's defaults are
"Item, Quantity, Rate, Amount", "Tax", "Amount Paid", "Balance Due"; VAT and GST are the tax's name in the
UK, EU, Singapore, Australia). Keys are casefolded: look a printed label up as ``label.casefold()``. A
label outside them is never guessed at (``layout_unrecognised``).

They live apart from the parser so that a new layout's labels are added here, in one place, without
reading or changing how the parser places text.
"""

from __future__ import annotations

import re


def _family(families: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {label.casefold(): name for name, labels in families.items() for label in labels}


# the title above the header box (casefolded)
TITLES = frozenset(("invoice", "tax invoice"))
# label/value rows of the header box -> InvoiceDocument field
HEADER_LABELS = _family({
    "invoice_date": ("Date:", "Invoice Date:", "Issue Date:", "Date of Issue:"),
    "due_date": ("Due Date:", "Payment Due:"),
    "payment_terms": ("Payment Terms:", "Terms of Payment:"),
    "payment_method": ("Payment Method:", "Paid By:"),
    # a membership card's number only: a shop's own customer number is another identifier, and read as a
    # card it could name another member
    "member_number": ("Member No.:", "Member Number:", "Member ID:", "Member #:", "Membership No.:"),
    "po_number": ("PO Number:", "PO #:", "P.O. Number:", "Purchase Order:"),
    "balance_due": ("Balance Due:", "Amount Due:"),
})
# the labels over the bill-to and ship-to blocks
PARTY_LABELS = _family({"bill_to": ("Bill To:", "Billed To:", "Invoice To:", "Sold To:"),
                        "ship_to": ("Ship To:", "Shipped To:", "Deliver To:")})
# the item table's header row: four cells, the description's first, each naming its column
TABLE_COLUMNS = _family({
    "item": ("Item", "Items", "Description", "Item Description", "Product"),
    "quantity": ("Quantity", "Qty", "Qty.", "Hours", "Units"),
    "unit": ("Unit Price", "Rate", "Price", "Unit Cost"),
    "amount": ("Amount", "Total", "Line Total"),
})
# the totals block: "<label>:" or, for an adjustment, "<label> (<rate>%):" (TOTAL_LABEL; its name group is
# looked up here)
TOTAL_LABELS = _family({
    "subtotal": ("Subtotal", "Sub Total", "Sub-total"),
    "discount": ("Discount",),
    "tax": ("Tax", "VAT", "GST", "Sales Tax"),
    "shipping": ("Shipping", "Delivery", "Shipping & Handling", "Freight"),
    "total": ("Total", "Grand Total", "Invoice Total"),
    "amount_paid": ("Amount Paid", "Paid"),
    "balance_due": ("Balance Due", "Amount Due"),
})
TOTAL_LABEL = re.compile(r"^(?P<name>[^():]+?)(?: \((?P<rate>\d{1,3}(?:\.\d{1,4})?)%\))?:$")
# the labels over the text blocks after the totals
BLOCK_LABELS = _family({"notes": ("Notes:", "Note:", "Comments:"),
                        "terms": ("Terms:", "Terms & Conditions:", "Terms and Conditions:")})
