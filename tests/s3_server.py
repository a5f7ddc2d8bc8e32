"""A real S3-compatible server on loopback for tests: moto's standalone server
(``ThreadedMotoServer``), a bucket, and the environment that points boto3, pyarrow (Ray's
storage) and MLflow at it."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

BUCKET = "lora-studies"


@dataclass
class S3:
    env: dict[str, str]  # AWS_* settings for this process and the CLIs it starts
    server: Any

    @property
    def client(self) -> Any:
        import boto3

        return boto3.client("s3", **self._kwargs())

    def _kwargs(self) -> dict[str, str]:
        return {
            "endpoint_url": self.env["AWS_ENDPOINT_URL"],
            "aws_access_key_id": self.env["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": self.env["AWS_SECRET_ACCESS_KEY"],
            "region_name": self.env["AWS_DEFAULT_REGION"],
        }

    def keys(self, prefix: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def text(self, key: str) -> str:
        body = self.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        return bytes(body).decode()

    def results(self, prefix: str) -> dict[str, list[dict[str, Any]]]:
        """trial id -> its reports, from the result.json objects under ``prefix``."""
        out: dict[str, list[dict[str, Any]]] = {}
        for key in self.keys(prefix):
            if key.endswith("/result.json"):
                rows = [json.loads(x) for x in self.text(key).splitlines() if x.strip()]
                if rows:
                    out.setdefault(rows[0]["trial_id"], []).extend(rows)
        return out


def start() -> S3:
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",  # boto3 and pyarrow read it
        "MLFLOW_S3_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    s3 = S3(env, server)
    boto3.client("s3", **s3._kwargs()).create_bucket(Bucket=BUCKET)
    return s3


@contextlib.contextmanager
def running() -> Iterator[S3]:
    """A server, with its AWS_* settings in this process's environment while it runs."""
    server = start()
    old = {k: os.environ.get(k) for k in server.env}
    os.environ.update(server.env)
    try:
        yield server
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.server.stop()
