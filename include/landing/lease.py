"""One writer of a batch at a time (an extract, or an erasure): a lease object beside the batch, taken with
a conditional PUT.

    s3://<bucket>/<table>/<batch_id>/_lease.json   {"run_id", "acquired_at", "expires_at"}

S3 and MinIO create an object with `If-None-Match: *` only if the key is free, and overwrite it with
`If-Match: <ETag>` only if it is unchanged; otherwise they answer 412 PreconditionFailed. Hence:

- `acquire` creates the lease. An existing lease is taken over (If-Match its ETag, so of two contenders
  only one wins) when it has expired, or when it belongs to the same run: Airflow starts a task's next
  try only after the previous try ended, so that holder is a killed try of this run. Otherwise LeaseHeld
  names the holder and the expiry; the task's retries try again.
- `confirm`, right before publishing, rewrites the lease If-Match the ETag we wrote, and raises LeaseLost
  if another extract took it over meanwhile (our lease expired, or this try was presumed dead): a
  superseded extract publishes nothing and deletes nothing but its own files.
- `release` deletes the lease if it is still ours. MinIO ignores If-Match on DELETE, so this compares
  ETags first; a takeover between the two leaves the taker without a lease, which its `confirm` then
  reports: at worst a spurious LeaseLost, which the task's retry repairs, never two publishers.

The expiry bounds how long a crashed holder of another run blocks the interval. It should exceed the
extract's longest run (the DAG gives the task 20 minutes); a slower extract fails at `confirm` if
another run took its expired lease over, and publishes otherwise.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

from botocore.exceptions import ClientError

log = logging.getLogger(__name__)

LEASE_NAME = "_lease.json"


class LeaseHeld(RuntimeError):
    """Another extract of the same batch is running (or crashed less than its lease's duration ago)."""


class LeaseLost(RuntimeError):
    """Another extract took this extract's lease over; it must not publish."""


def _refused(e: ClientError) -> bool:
    # If-Match on a lease deleted meanwhile: NoSuchKey; two conditional writes at once on AWS: 409
    return e.response["Error"]["Code"] in ("PreconditionFailed", "NoSuchKey", "ConditionalRequestConflict")


class Lease:
    def __init__(self, s3, bucket: str, key: str, *, run_id: str, seconds: float, extra_args: dict):
        self.s3, self.bucket, self.key = s3, bucket, key
        self.run_id, self.seconds, self.extra_args = run_id, seconds, extra_args
        self.etag: str | None = None
        self.acquired_at: str | None = None

    def _put(self, **condition) -> None:
        now = dt.datetime.now(dt.timezone.utc)
        self.acquired_at = self.acquired_at or now.isoformat()  # renewals keep it
        body = {"run_id": self.run_id, "acquired_at": self.acquired_at,
                "expires_at": (now + dt.timedelta(seconds=self.seconds)).isoformat()}
        self.etag = self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=json.dumps(body).encode(),
                                       ContentType="application/json", **self.extra_args, **condition)["ETag"]

    def confirm(self) -> None:
        """Renew the lease if it is still ours; raise LeaseLost otherwise."""
        try:
            self._put(IfMatch=self.etag)
        except ClientError as e:
            if _refused(e):
                raise LeaseLost(f"s3://{self.bucket}/{self.key} was taken over by another extract; "
                                "this one publishes nothing") from None
            raise

    def release(self) -> None:
        try:
            ours = self.s3.head_object(Bucket=self.bucket, Key=self.key)["ETag"] == self.etag
        except ClientError as e:
            if e.response["Error"]["Code"] not in ("404", "NoSuchKey"):
                raise
            ours = False
        if ours:
            self.s3.delete_object(Bucket=self.bucket, Key=self.key)
        else:
            log.info("lease s3://%s/%s is no longer ours; left to its holder", self.bucket, self.key)


def acquire(s3, bucket: str, prefix: str, *, run_id: str, seconds: float, extra_args: dict) -> Lease:
    """The lease of the batch under `prefix`; raises LeaseHeld if another run holds it."""
    lease = Lease(s3, bucket, prefix + LEASE_NAME, run_id=run_id, seconds=seconds, extra_args=extra_args)
    holder: dict = {}
    for _ in range(3):  # a lease released between our create and our read: try creating it again
        try:
            lease._put(IfNoneMatch="*")
            return lease
        except ClientError as e:
            if not _refused(e):
                raise
        try:
            current = s3.get_object(Bucket=bucket, Key=lease.key)
        except s3.exceptions.NoSuchKey:
            continue
        holder = json.loads(current["Body"].read())
        expired = dt.datetime.fromisoformat(holder["expires_at"]) <= dt.datetime.now(dt.timezone.utc)
        if not expired and holder["run_id"] != run_id:
            break
        try:
            lease._put(IfMatch=current["ETag"])
        except ClientError as e:
            if not _refused(e):
                raise
            continue  # another extract took it over first: see who holds it now
        log.warning("took over the lease of run %r (%s)", holder["run_id"],
                    "expired" if expired else "an earlier try of this run")
        return lease
    raise LeaseHeld(
        f"s3://{bucket}/{lease.key}: run {holder.get('run_id')!r} is extracting this batch since "
        f"{holder.get('acquired_at')}; its lease expires at {holder.get('expires_at')}. Try again later."
    )
