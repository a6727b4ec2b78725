"""The landed batch: everything about a batch in the landing bucket that more than one stage needs.

    s3://<landing>/<table>/<batch_id>/attempt=<id>/part-00000.parquet   data files (an attempt's, or an erasure's)
    s3://<landing>/<table>/<batch_id>/_manifest.json                    what readers read; written last
    s3://<landing>/<table>/<batch_id>/_lease.json                       one writer of the batch at a time

One job per module: `batch_id` (naming a batch), `layout` (its keys and URIs), `manifest_io` (reading and
publishing its manifest, validated as lakehouse_jobs.manifest.BatchManifest), `listing` (which batches
and objects exist), `cleanup` (deleting what no manifest lists, or a whole batch), `lease`, `s3_writer`
(streaming an object into S3 with its encryption and tags), `retention` (the tag and lifecycle rule that
expire batch objects). The extract (include/extract/), the erasure (include/erasure_landing.py), the
reconciliation (include/reconcile.py) and the maintenance DAG are its clients; nothing here imports them.
"""
