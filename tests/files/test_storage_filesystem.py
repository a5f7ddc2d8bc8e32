"""The storage filesystem rides out an outage of the object store, also once pickled (as Tune
sends it to trial actors), and never pickles credentials. Against moto's S3 server behind a
TCP forwarder that refuses connections while it is cut."""

from __future__ import annotations

import os
import pickle
import socket
import threading
from collections.abc import Iterator

import pytest
from pyarrow import fs

from lora_hpo.files.storage_filesystem import RetryingS3FileSystem, storage_filesystem
from tests.s3_server import BUCKET, start
from tests.tcp_outage import TcpOutage

pytestmark = pytest.mark.slow


@pytest.fixture
def s3_behind_a_cut(monkeypatch: pytest.MonkeyPatch) -> Iterator[TcpOutage]:
    s3 = start()
    host, port = s3.server.get_host_and_port()
    proxy = TcpOutage(host, port)
    for key, value in {**s3.env, "AWS_ENDPOINT_URL": proxy.url}.items():
        monkeypatch.setenv(key, value)
    try:
        yield proxy
    finally:
        proxy.close()
        s3.server.stop()


def test_a_request_waits_out_an_outage_of_the_store(
    s3_behind_a_cut: TcpOutage,
) -> None:
    mine, path = storage_filesystem(f"s3://{BUCKET}/study/marker")
    assert path == f"{BUCKET}/study/marker" and isinstance(mine, RetryingS3FileSystem)
    shipped = pickle.loads(pickle.dumps(mine))  # as a trial actor on another node gets it
    assert "testing" not in repr(shipped.__reduce__())  # keys come from each node's env
    with shipped.open_output_stream(path) as out:
        out.write(b"before")
    s3_behind_a_cut.cut()
    back = threading.Timer(3.0, s3_behind_a_cut.restore)  # pyarrow's default: three tries
    back.start()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", s3_behind_a_cut.port), timeout=5)
    with shipped.open_input_stream(path) as src:  # waits until the store is back
        assert src.read() == b"before"
    back.join()


def test_a_local_root_is_the_local_filesystem(tmp_path: os.PathLike[str]) -> None:
    local, path = storage_filesystem(str(tmp_path))
    assert isinstance(local, fs.LocalFileSystem) and path == str(tmp_path)
