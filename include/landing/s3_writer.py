"""A writable file object that streams into one S3 object by multipart upload.

pyarrow's ParquetWriter writes into it directly, so a Parquet file goes from MySQL rows to S3 without
ever existing whole in memory or on local disk: at most one part (``part_size`` bytes) is buffered.
Every request carries the server-side-encryption headers (pyarrow's own S3 filesystem cannot send them),
and the object's tags when `extra_args` has a `Tagging` (the landing bucket's retention rule selects batch
objects by tag, include/landing/retention.py): both are set when the object is created, with no second
request, so an object never exists without them.
A failed write aborts the multipart upload, so no orphaned parts and no partial object are left behind.
"""

from __future__ import annotations

import hashlib
import io

MiB = 1024 * 1024


def sse_args(sse: str, kms_key_id: str | None = None) -> dict[str, str]:
    """boto3 arguments for SSE-S3 ("AES256") or SSE-KMS ("aws:kms", optionally with a key id)."""
    if sse not in ("AES256", "aws:kms"):
        raise ValueError(f"S3 server-side encryption must be 'AES256' or 'aws:kms', not {sse!r}")
    args = {"ServerSideEncryption": sse}
    if sse == "aws:kms" and kms_key_id:
        args["SSEKMSKeyId"] = kms_key_id
    return args


class S3MultipartWriter(io.RawIOBase):
    """Use as a context manager: leaving normally completes the upload, an exception aborts it."""

    def __init__(self, client, bucket: str, key: str, *, extra_args: dict | None = None,
                 part_size: int = 16 * MiB):
        super().__init__()
        if part_size < 5 * MiB:
            raise ValueError("S3 parts other than the last must be at least 5 MiB")
        self.client, self.bucket, self.key = client, bucket, key
        self.extra_args = extra_args or {}
        self.part_size = part_size
        self.sha256 = hashlib.sha256()
        self.size = 0
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        self._buffer += view
        self.sha256.update(view)
        self.size += len(view)
        while len(self._buffer) >= self.part_size:
            self._upload_part(bytes(self._buffer[: self.part_size]))
            del self._buffer[: self.part_size]
        return len(view)

    def _upload_part(self, body: bytes) -> None:
        if self._upload_id is None:
            self._upload_id = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, **self.extra_args
            )["UploadId"]
        number = len(self._parts) + 1
        # SSE-S3/KMS and tagging headers belong to create_multipart_upload only; parts inherit them
        etag = self.client.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=body
        )["ETag"]
        self._parts.append({"ETag": etag, "PartNumber": number})

    def close(self) -> None:
        """Complete the object: one PUT if it fit in a single part, else finish the multipart upload."""
        if self.closed:
            return
        try:
            if self._upload_id is None:
                self.client.put_object(Bucket=self.bucket, Key=self.key, Body=bytes(self._buffer),
                                       **self.extra_args)
            else:
                if self._buffer:
                    self._upload_part(bytes(self._buffer))
                self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=self.key, UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
        except BaseException:
            self.abort()
            raise
        self._buffer = bytearray()
        super().close()

    def abort(self) -> None:
        if self._upload_id is not None:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id)
            self._upload_id = None
        self._buffer = bytearray()
        super().close()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
