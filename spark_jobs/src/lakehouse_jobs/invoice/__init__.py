"""The invoice job invoice_load: PDFs to the invoice star schema, one module per step, the entry point in job."""
