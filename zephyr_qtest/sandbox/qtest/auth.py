"""Authentication of the qTest sandbox: header parsing, token minting, the OAuth answers' shapes.

qTest accepts two kinds of bearer token (API_NOTES Q-1): the *API token* a user copies from the web app,
which never expires unless revoked, and *access tokens* from ``POST /oauth/token`` (password grant, or a
refresh token), which expire. Both are sent as ``Authorization: bearer <token>``; the scheme is matched
case-insensitively. The store keeps the tokens (so they survive a restart); this module only parses
headers and mints values.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import uuid
from urllib.parse import parse_qs

# The scope string qTest answers with (API_NOTES Q-1).
SCOPE = "read write create delete administration execute import export share baseline"
AGENT = "qtest-sandbox"
# The Basic header documented for refresh-token grants: base64 of "qtest-api:".
REFRESH_CLIENT = "qtest-api"

# Spring Security OAuth2 error bodies, which is what the vendor's server is built on [INF]; the
# swagger binds no 401 body, so clients should rely on the status only.
MISSING_TOKEN = {
    "error": "unauthorized",
    "error_description": "Full authentication is required to access this resource",
}


def invalid_token(token: str) -> dict[str, str]:
    # Only a prefix of the token is echoed: an error body must not hand a secret back in full.
    return {"error": "invalid_token", "error_description": f"Invalid access token: {token[:8]}..."}


def derive_api_token(seed: int) -> str:
    """The API token of a site first created with ``seed``: UUID-shaped like the vendor's, stable."""
    digest = hashlib.sha256(f"zephyr-qtest-sandbox/qtest/api-token/{seed}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def new_token() -> str:
    """A fresh access or refresh token (random; UUID-shaped)."""
    return str(uuid.UUID(bytes=secrets.token_bytes(16), version=4))


def bearer_token(header_value: str | None) -> str | None:
    """The token of ``Authorization: bearer <token>`` (any case of the scheme), else None."""
    if not header_value:
        return None
    scheme, _, token = header_value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def basic_client(header_value: str | None) -> str | None:
    """The client name of ``Authorization: Basic base64("<name>:")``, else None.

    qTest wants the site name followed by a colon and no password (or ``qtest-api:`` for refresh
    grants). A header that is not Basic, not base64, or carries a password is rejected.
    """
    if not header_value:
        return None
    scheme, _, encoded = header_value.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    name, colon, password = decoded.partition(":")
    if not colon or password or not name:
        return None
    return name


def parse_form(body: bytes) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as a dict (the last value of a repeated key wins)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return {}
    return {key: values[-1] for key, values in parse_qs(text, keep_blank_values=True).items()}
