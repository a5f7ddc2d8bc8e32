"""Whether a URI carries a credential: user info, or a query parameter named like a secret.
Spec files get committed and shared, and what a job carries is shown in the Ray dashboard, so
``validate`` and ``submit`` refuse such URIs. No import beyond the standard library."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL", "AUTH")
# query parameters that carry a credential in a URI (presigned S3, Azure SAS, API keys, ...)
SECRET_PARAMS = ("SIG", "PWD", "SAS")


def credential_in(uri: str) -> str:
    """What credential a URI carries ("" when none): user info (a user name, with or without
    a password) or a query parameter named like a secret (token, key, signature, ...)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return ""
    if parts.password is not None:
        return "a password in its user info (user:password@)"
    if parts.username:
        return "a user name in its user info (user@), which often is the credential itself"
    for name, _ in parse_qsl(parts.query, keep_blank_values=True):
        upper = name.upper().replace("-", "_")
        if any(word in upper for word in (*SECRET_WORDS, *SECRET_PARAMS)):
            return f"the query parameter {name!r}"
    return ""
