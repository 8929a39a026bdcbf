"""Bearer tokens for the Zephyr sandbox: JWT-shaped, HMAC-SHA256 signed, checked like the vendor.

Zephyr Scale Cloud keys are JWTs generated in Jira. The sandbox mints one of the same shape with a
per-sandbox secret (derived from the seed unless given) and rejects everything else with the
2026 spec's 401 body ``{"error": "<text>"}``, one message per documented failure case.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass

# The fixed account the sandbox's own token belongs to (an Atlassian accountId, as in real keys).
SANDBOX_ACCOUNT_ID = "712020:5a0f4c3e-7b1d-4e0a-9c55-0d9e2f1a6b7c"
_ISSUER = "com.kanoah.test-manager"
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]*$")

# The 401 texts, one per case the 2026 spec lists.
MISSING_HEADER = "Authorization header is missing"
NOT_THREE_PARTS = "Token must consist of 3 parts separated by dots"
NOT_BASE64 = "Token segment is not valid base64"
NOT_JSON = "Token segment is not valid JSON"
BAD_SIGNATURE = "Token signature could not be verified"


def derive_secret(seed: int) -> bytes:
    """The signing secret of a sandbox started with ``seed``: stable, so a rehearsal can restart."""
    return hashlib.sha256(f"zephyr-qtest-sandbox/jwt/{seed}".encode()).digest()


def _b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64url_decode(segment: str) -> bytes:
    """Strict base64url decoding: wrong alphabet or impossible length is an error, not skipped."""
    if not _BASE64URL.match(segment) or len(segment) % 4 == 1:
        raise ValueError(NOT_BASE64)
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(NOT_BASE64) from exc


def cdn_session_token(secret: bytes) -> str:
    """The browser session token the sandbox's CDN of inline images takes (``routes/cdn.py``): stable for a
    secret, and unlike the API token (the real CDN does not take the API token either)."""
    return "cdn-session-" + hmac.new(secret, b"zephyr sandbox cdn session", hashlib.sha256).hexdigest()[:32]


def mint_token(secret: bytes, *, account_id: str = SANDBOX_ACCOUNT_ID, issued_at: int = 1700000000) -> str:
    """A JWT like the ones Jira issues for Zephyr: HS256 header, Zephyr-style context payload.

    ``issued_at`` is fixed by default so the same secret always yields the same token.
    """
    header = {"alg": "HS256", "typ": "JWT"}
    payload = {
        "context": {"baseUrl": "https://sandbox.atlassian.net", "user": {"accountId": account_id}},
        "iss": _ISSUER,
        "sub": account_id,
        "iat": issued_at,
        # Far in the future: the sandbox never expires its keys (a rehearsal can run for days).
        "exp": issued_at + 10 * 365 * 24 * 3600,
    }
    signing_input = ".".join(
        _b64url_encode(json.dumps(part, separators=(",", ":")).encode()) for part in (header, payload)
    )
    signature = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url_encode(signature)}"


@dataclass(frozen=True, slots=True)
class AuthResult:
    """The outcome of checking one Authorization header: the token, or the 401 text."""

    token: str | None
    error: str | None


def check_authorization(header_value: str | None, secret: bytes) -> AuthResult:
    """Validate ``Authorization: Bearer <jwt>`` in the order the failure cases are listed."""
    if not header_value or not header_value.strip():
        return AuthResult(None, MISSING_HEADER)
    scheme, _, token = header_value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        # A header that carries no bearer token is, for the authorizer, no usable header.
        return AuthResult(None, MISSING_HEADER)
    token = token.strip()
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        return AuthResult(None, NOT_THREE_PARTS)
    try:
        decoded = [_b64url_decode(part) for part in parts]
    except ValueError:
        return AuthResult(None, NOT_BASE64)
    try:
        header = json.loads(decoded[0])
        payload = json.loads(decoded[1])
    except (UnicodeDecodeError, json.JSONDecodeError):
        return AuthResult(None, NOT_JSON)
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return AuthResult(None, NOT_JSON)
    if header.get("alg") != "HS256":
        return AuthResult(None, BAD_SIGNATURE)
    expected = hmac.new(secret, f"{parts[0]}.{parts[1]}".encode("ascii"), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, decoded[2]):
        return AuthResult(None, BAD_SIGNATURE)
    return AuthResult(token, None)
