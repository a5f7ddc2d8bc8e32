"""A small reverse proxy for tests: it forwards every request to a real server (e.g. an
``mlflow server``), or, while a fault is set, answers each request itself with an error status
(as a load balancer in front of a sick server does), cycling through the given answers."""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "trailer"}


@dataclass(frozen=True)
class Answer:
    """One error answer: the status, the body and its content type."""

    status: int
    body: str
    content_type: str = "application/json"


# what a sick MLflow (or the proxy in front of it) answers: JSON errors and an HTML page
SICK = (
    Answer(503, '{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "overloaded"}'),
    Answer(500, '{"error_code": "INTERNAL_ERROR", "message": "database is locked"}'),
    Answer(502, "<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"),
)


class FaultProxy:
    """``uri``: the proxy's address; ``fail(answers)`` starts answering errors, ``heal()``
    forwards again; ``wait_faults(n)`` waits until ``n`` requests were answered with an error
    since the last ``fail``."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self._answers: tuple[Answer, ...] = ()
        self._faults = 0
        self._forwarded = 0
        self._changed = threading.Condition()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _serve(self) -> None:
        self.server.serve_forever(poll_interval=0.05)  # a quick shutdown

    def fail(self, answers: tuple[Answer, ...] = SICK) -> None:
        with self._changed:
            self._answers, self._faults = tuple(answers), 0

    def heal(self) -> None:
        with self._changed:
            self._answers = ()

    def wait_faults(self, n: int, timeout_s: float) -> int:
        """Wait until ``n`` requests got an error answer; the number that did."""
        with self._changed:
            self._changed.wait_for(lambda: self._faults >= n, timeout_s)
            return self._faults

    def _next_fault(self) -> Answer | None:
        with self._changed:
            if not self._answers:
                self._forwarded += 1
                return None
            answer = self._answers[self._faults % len(self._answers)]
            self._faults += 1
            self._changed.notify_all()
            return answer


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as MLflow's client pool expects

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            answer = proxy._next_fault()
            if answer is not None:
                self._send(answer.status, [("Content-Type", answer.content_type)], answer.body)
                return
            host = proxy.upstream.hostname or "127.0.0.1"
            up = http.client.HTTPConnection(host, proxy.upstream.port, 30)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                headers["Host"] = proxy.upstream.netloc  # MLflow refuses a foreign Host
                up.request(self.command, self.path, body=body, headers=headers)
                resp = up.getresponse()
                data = resp.read()
                kept = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
                kept = [(k, v) for k, v in kept if k.lower() != "content-length"]
                self._send(resp.status, kept, data)
            finally:
                up.close()

        def _send(self, status: int, headers: list[tuple[str, str]], body: str | bytes) -> None:
            data = body.encode() if isinstance(body, str) else body
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

    return Handler
