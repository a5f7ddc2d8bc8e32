"""The Ray Jobs API client side: the dashboard address, the auth token (looked up as Ray
does), the client with the token as an explicit header, and Jobs API failures turned into
messages that name the flag. What a job carries is in ``job_payload.py``.

This module imports no Ray at import time: the CLI registers its commands cheaply.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lora_hpo.spec.spec_errors import UsageError

# --- address and token -----------------------------------------------------------------------


def dashboard_address(given: str | None) -> str:
    """--address, else RAY_API_SERVER_ADDRESS / RAY_ADDRESS when they hold an http(s) URL."""
    if given is None:
        for name in ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS"):
            value = os.environ.get(name, "")
            if value.startswith(("http://", "https://")):
                given = value
                break
        else:
            raise UsageError(
                "--address: not given, and neither RAY_API_SERVER_ADDRESS nor RAY_ADDRESS holds"
                " the dashboard URL (http://HOST:8265)"
            )
    parts = urlsplit(given)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--address: must be the dashboard URL http://HOST:8265, got {given!r}")
    return given.rstrip("/")


def probe_dashboard(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast when nothing listens at the address (an HTTP client may hang much longer)."""
    parts = urlsplit(address)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname or "", port), timeout=timeout_s).close()
    except OSError as exc:
        raise UsageError(
            f"--address: cannot reach the Ray dashboard at {address!r}: {exc.strerror or exc}"
        ) from None


@dataclass(frozen=True)
class Token:
    value: str
    source: str  # where it came from, for error messages (never the value)


def auth_token() -> Token | None:
    """The Ray auth token, looked up in Ray's order: RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH,
    ~/.ray/auth_token. The default file is read only with RAY_AUTH_MODE=token (as Ray does);
    the two env vars are explicit, so they count on their own."""
    mode = os.environ.get("RAY_AUTH_MODE", "").lower()
    if mode == "disabled":
        return None
    if value := os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return Token(value, "RAY_AUTH_TOKEN")
    files = []
    if path_env := os.environ.get("RAY_AUTH_TOKEN_PATH"):
        files.append((Path(path_env).expanduser(), "RAY_AUTH_TOKEN_PATH"))
    if mode == "token":
        files.append((Path.home() / ".ray" / "auth_token", "~/.ray/auth_token"))
    for path, name in files:
        try:
            value = path.read_text().strip()
        except OSError:
            continue
        if value:
            return Token(value, f"{name} ({path})")
    if files:  # the token was asked for, and none is there
        tried = ", ".join(f"{name}={str(path)!r}" for path, name in files)
        raise UsageError(
            f"RAY_AUTH_MODE={mode or 'unset'}: no Ray auth token in RAY_AUTH_TOKEN, {tried}"
        )
    return None


def warn_plain_http(url: str, token: Token | None) -> None:
    """One line on stderr when the token would cross a network in the clear."""
    parts = urlsplit(url)
    if token and parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        print(
            f"warning: the Ray auth token goes to {parts.hostname} over plain http://; use"
            " https:// (an Ingress with TLS) or a port-forward to localhost",
            file=sys.stderr,
        )


def _auth_message(address: str, text: str, token: Token | None) -> str:
    if "Authentication failed" in text or "403" in text:
        src = token.source if token else "none"
        return f"--address: the Ray cluster at {address!r} rejected the auth token from {src}"
    return (
        f"--address: the Ray cluster at {address!r} requires an auth token (401); set"
        " RAY_AUTH_MODE=token and RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token"
    )


@contextmanager
def api_errors(address: str, token: Token | None, job_id: str | None = None) -> Iterator[None]:
    """Jobs API failures that are the user's input (address, token, job id) -> UsageError."""
    from ray.exceptions import AuthenticationError

    try:
        yield
    except AuthenticationError as exc:
        raise UsageError(_auth_message(address, str(exc), token)) from None
    except OSError as exc:  # builtin ConnectionError and requests' exceptions
        raise UsageError(
            f"--address: lost the Ray dashboard at {address!r} ({type(exc).__name__})"
        ) from None
    except RuntimeError as exc:
        if job_id is not None and "status code 404" in str(exc):
            raise UsageError(
                f"JOB_ID: no job {job_id!r} on the Ray cluster at {address!r}"
            ) from None
        raise


def client(address: str | None) -> tuple[Any, str, Token | None]:
    """A JobSubmissionClient for the dashboard, with the token as an explicit header (so what
    is sent does not depend on Ray's process-wide token cache)."""
    url = dashboard_address(address)
    token = auth_token()
    warn_plain_http(url, token)
    probe_dashboard(url)
    import logging

    from ray.job_submission import JobSubmissionClient

    logging.getLogger("ray.dashboard.modules.job.sdk").setLevel(logging.WARNING)

    headers = {"Authorization": f"Bearer {token.value}"} if token else None
    with api_errors(url, token):
        return JobSubmissionClient(url, headers=headers), url, token
