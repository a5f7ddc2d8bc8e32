"""The pyarrow filesystem of a storage root (a local path or a URI such as ``s3://bucket/p``),
as Ray Tune and lora-hpo read and write the study through it.

For S3 it is the filesystem pyarrow resolves from the URI (endpoint, region and credentials
from each process's environment, as Ray resolves it), with one change: a request that cannot
reach the store is retried for up to about ``OUTAGE_S`` seconds instead of three times in a
second. Without it, a store that is down for half a minute (a restarted MinIO, a network
blip) fails every trial that checkpoints or starts in that window, and so the whole study.

The filesystem pickles as its options, never its credentials: Tune's trial actors on other
nodes rebuild it, and resolve the keys from their own environment (a Secret on Kubernetes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyarrow import fs

# AWS's default strategy backs off 25 ms x 2^n without jitter: 13 attempts wait
# 25 ms x (2^12 - 1), about 102 s, before a request fails for good. Errors that are not
# transient (no such key, access denied) are not retried at all.
ATTEMPTS = 13
OUTAGE_S = 0.025 * (2 ** (ATTEMPTS - 1) - 1)


class RetryingS3FileSystem(fs.S3FileSystem):  # type: ignore[misc]
    """``S3FileSystem(**options)`` that rides out an outage of the store; pickles as its
    options (pyarrow's own pickling drops the retry strategy)."""

    def __init__(self, options: dict[str, Any]) -> None:
        strategy = fs.AwsDefaultS3RetryStrategy(max_attempts=ATTEMPTS)
        super().__init__(**options, retry_strategy=strategy)
        self._options = options

    def __reduce__(self) -> tuple[Any, ...]:
        return (RetryingS3FileSystem, (self._options,))


def storage_filesystem(uri: str) -> tuple[fs.FileSystem, str]:
    """(filesystem, path in it) for a local path (made absolute) or a URI; S3 rides out
    outages. (Import this module inside functions: pyarrow takes a while to import.)"""
    filesystem, path = fs.FileSystem.from_uri(uri if "://" in uri else str(Path(uri).resolve()))
    if isinstance(filesystem, fs.S3FileSystem) and not isinstance(filesystem, RetryingS3FileSystem):
        options = dict(filesystem.__reduce__()[1][0])  # what from_uri resolved
        filesystem = RetryingS3FileSystem(options)
    return filesystem, path
