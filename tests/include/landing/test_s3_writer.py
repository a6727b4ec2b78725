"""Server-side encryption arguments of the extract's S3 writes (include/landing/s3_writer.py)."""

import pytest

from include.landing.s3_writer import sse_args

pytestmark = pytest.mark.unit


def test_sse_arguments():
    assert sse_args("AES256") == {"ServerSideEncryption": "AES256"}
    assert sse_args("aws:kms", "key-1") == {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "key-1"}
    with pytest.raises(ValueError):
        sse_args("none")
