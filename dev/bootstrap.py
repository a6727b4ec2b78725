"""One-off setup of the local S3 server: the landing and lakehouse buckets, encrypted by default.

    python -m dev.bootstrap buckets

Idempotent. In production the buckets are made by infrastructure code, with a policy that also denies
unencrypted puts and non-TLS requests (docs/production.md).
"""

from __future__ import annotations

import os
import sys

import boto3
from botocore.exceptions import ClientError


def s3_client():
    return boto3.client(
        "s3",
        endpoint_url=os.environ["S3_ENDPOINT_URL"],
        aws_access_key_id=os.environ["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["S3_SECRET_ACCESS_KEY"],
        region_name=os.environ.get("S3_REGION", "us-east-1"),
    )


def ensure_buckets(s3, names: list[str]) -> None:
    for name in names:
        try:
            s3.head_bucket(Bucket=name)
        except ClientError:
            s3.create_bucket(Bucket=name)
            print(f"created bucket {name}")
        # SSE-S3 by default, so even a writer that forgets the header stores ciphertext at rest
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )


def main(argv: list[str]) -> int:
    if argv != ["buckets"]:
        print(__doc__)
        return 2
    ensure_buckets(s3_client(), [os.environ["LANDING_BUCKET"], os.environ["LAKEHOUSE_BUCKET"]])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
