"""The benchmark's S3 buckets: emptied between contenders, and the Delta logs its tables' commits are read from."""

from __future__ import annotations

import json

from benchmarks.harness.delta_log import commit_facts
from benchmarks.harness.stack import s3_client


class Store:
    """The benchmark's buckets: <prefix>-landing (the extract's batches) and <prefix>-lakehouse (our Delta
    tables under delta/, dlt's under dlt/, the notebook's under notebook/)."""

    def __init__(self, prefix: str):
        self.s3 = s3_client()
        self.landing, self.lakehouse = f"{prefix}-landing", f"{prefix}-lakehouse"
        for bucket in (self.landing, self.lakehouse):
            try:
                self.s3.create_bucket(Bucket=bucket)
            except (self.s3.exceptions.BucketAlreadyOwnedByYou, self.s3.exceptions.BucketAlreadyExists):
                pass

    def delete(self, bucket: str, prefix: str) -> None:
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                self.s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        for page in self.s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
            for up in page.get("Uploads", []):
                self.s3.abort_multipart_upload(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])

    def versions(self, table_key: str) -> list[int]:
        out = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.lakehouse, Prefix=f"{table_key}/_delta_log/"):
            for o in page.get("Contents", []):
                name = o["Key"].rsplit("/", 1)[1]
                if name.endswith(".json") and name[:-5].isdigit():
                    out.append(int(name[:-5]))
        return sorted(out)

    def commits(self, table_key: str, after: int | None) -> list[dict]:
        """What each commit after version `after` did (benchmarks.harness.delta_log.commit_facts)."""
        out = []
        for v in [v for v in self.versions(table_key) if after is None or v > after]:
            body = self.s3.get_object(Bucket=self.lakehouse, Key=f"{table_key}/_delta_log/{v:020d}.json")["Body"]
            out.append(commit_facts(v, body.read().decode()))
        return out

    def json(self, bucket: str, key: str) -> dict | None:
        try:
            return json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except self.s3.exceptions.NoSuchKey:
            return None
