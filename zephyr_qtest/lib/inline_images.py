"""Pictures embedded in Zephyr's rich text: found, fetched, and pointed at their qTest copies.

Zephyr Scale Cloud writes two kinds of ``<img src>`` into rich text (objective, precondition, step texts,
comments):

- addresses on SmartBear's CDN (``https://cloudfront.tm4j.smartbear.com/tenant/<tenant>/project/<id>/
  embedded-...png``), readable only with the token of a signed-in browser session: the API token cannot
  fetch them (REAL_SHAPES Zephyr 5; ``rmontemor-qase/qase-zephyr-scale-migration`` README, which calls it the
  app's "Forge JWT");
- ``data:image/...;base64,...`` URIs, whose bytes are in the text itself (``lsst-dm/docsteady``
  ``src/docsteady/utils.py`` decodes them and needs no token).

`CdnFetcher` sends the session token the user supplies (``ZEPHYR_CDN_TOKEN``) the three ways docsteady's
``get_zephy_image`` does at once: ``Authorization: Bearer``, a ``JWT`` header and a ``JWT`` cookie. Which of
them SmartBear's CDN really reads nobody public has shown: unverified against the real CDN. The token is
registered as a secret (masked in every log and error) and never written anywhere.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

import httpx

from zephyr_qtest.lib.redaction import redact, register_secret

# The setting that carries the browser session's token (named by every ledger line about a picture).
CDN_TOKEN_SETTING = "ZEPHYR_CDN_TOKEN"
# <img ... src="..."> in HTML; Zephyr's editor writes HTML, the quotes either kind.
_IMAGE = re.compile(
    r"""(?P<head><img\b[^>]*?\bsrc\s*=\s*)(?P<quote>["'])(?P<src>.*?)(?P=quote)""", re.IGNORECASE | re.DOTALL
)
_DATA_URI = re.compile(r"^data:(?P<type>[^;,]*)(?P<params>(?:;[^;,]*)*),(?P<data>.*)$", re.DOTALL)
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}
_TIMEOUT = httpx.Timeout(60.0, connect=15.0)


def image_sources(text: Any) -> list[str]:
    """The addresses of the pictures embedded in one rich-text value, in order (entities decoded)."""
    if not isinstance(text, str) or "<img" not in text.lower():
        return []
    return [html.unescape(match.group("src")).strip() for match in _IMAGE.finditer(text)]


def rewrite_sources(text: str, addresses: Mapping[str, str]) -> str:
    """`text` with each picture whose (decoded) address is in `addresses` pointed at its new address; the
    rest of the HTML byte for byte as it was. The new address is escaped for the attribute's quote."""
    if "<img" not in text.lower():
        return text

    def replace(match: re.Match[str]) -> str:
        new = addresses.get(html.unescape(match.group("src")).strip())
        if new is None:
            return match.group(0)
        quote = match.group("quote")
        escaped = html.escape(new, quote=False).replace(quote, "&quot;" if quote == '"' else "&#x27;")
        return f"{match.group('head')}{quote}{escaped}{quote}"

    return _IMAGE.sub(replace, text)


def without_sources(text: str) -> str:
    """`text` with every picture's address left out: the loader's own check compares texts so (the proof
    compares each picture with its source, byte for byte)."""
    if "<img" not in text.lower():
        return text
    return _IMAGE.sub(
        lambda match: f"{match.group('head')}{match.group('quote')}{match.group('quote')}", text
    )


def is_data_uri(source: str) -> bool:
    return source[:5].lower() == "data:"


def decode_data_uri(source: str) -> tuple[bytes, str]:
    """The bytes and content type of a ``data:`` URI; ValueError when it is not one that can be read."""
    match = _DATA_URI.match(source.strip())
    if match is None:
        raise ValueError("not a data: URI")
    content_type = match.group("type") or "text/plain"
    if ";base64" in match.group("params").lower():
        try:
            # Editors wrap long base64 lines; padding may be left out.
            data = re.sub(r"\s+", "", match.group("data"))
            return base64.b64decode(data + "=" * (-len(data) % 4), validate=True), content_type
        except (binascii.Error, ValueError) as error:
            raise ValueError(f"its base64 does not decode ({error})") from None
    return unquote_to_bytes(match.group("data")), content_type


def source_id(source: str) -> str:
    """A short, stable name of a picture's address (a data: URI can be megabytes long)."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


def shown(source: str) -> str:
    """A picture's address as a line names it: a data: URI by its type and size, not its bytes."""
    if is_data_uri(source):
        return f"{source.split(',', 1)[0]},... ({len(source)} characters)"
    return source


def file_name(source: str, content_type: str) -> str:
    """The attachment's name: the CDN file's own name, or ``inline-<id>.<ext>`` for a data: URI."""
    if not is_data_uri(source):
        name = urlsplit(source).path.rsplit("/", 1)[-1]
        if name:
            return name
    extension = _EXTENSIONS.get(content_type.split(";")[0].strip().lower(), "bin")
    return f"inline-{source_id(source)}.{extension}"


@dataclass(frozen=True)
class Picture:
    """One picture's bytes as the source gave them."""

    content: bytes
    content_type: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


class PictureError(Exception):
    """A picture that could not be read: the reason names the setting to change where one would help."""


class CdnFetcher:
    """Reads pictures: data: URIs decoded here, CDN addresses fetched with the browser session's token."""

    def __init__(self, token: str | None, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._token = token or None
        register_secret(self._token)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    @property
    def has_token(self) -> bool:
        return self._token is not None

    def can_read(self, source: str) -> bool:
        """Whether this fetcher may be able to read `source` (a CDN picture needs the token)."""
        return is_data_uri(source) or self.has_token

    async def __aenter__(self) -> CdnFetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def read(self, source: str) -> Picture:
        if is_data_uri(source):
            try:
                content, content_type = decode_data_uri(source)
            except ValueError as error:
                raise PictureError(f"the data: URI cannot be read: {error}") from None
            return Picture(content, content_type)
        if urlsplit(source).scheme.lower() not in ("http", "https"):
            raise PictureError("its address is neither http(s) nor a data: URI")
        if self._token is None:
            raise PictureError(f"no browser session token is configured ({CDN_TOKEN_SETTING})")
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=_TIMEOUT, transport=self._transport, follow_redirects=True
            )
        # As docsteady's get_zephy_image: the token as a bearer, a JWT header and a JWT cookie at once.
        headers = {
            "Authorization": f"Bearer {self._token}",
            "JWT": self._token,
            "Cookie": f"JWT={self._token}",
        }
        last = ""
        for _attempt in range(3):
            try:
                response = await self._client.get(source, headers=headers)
            except httpx.TransportError as error:
                last = redact(f"{type(error).__name__}: {error}")
                continue
            if response.status_code in (401, 403):
                raise PictureError(
                    f"the CDN answered {response.status_code}: the browser session token "
                    f"({CDN_TOKEN_SETTING}) is wrong or has expired"
                )
            if response.status_code == 404:
                raise PictureError("the CDN answered 404: the picture is not there (deleted in Zephyr?)")
            if response.status_code >= 500 or response.status_code == 429:
                last = f"the CDN answered {response.status_code}"
                continue
            if response.status_code != 200:
                raise PictureError(f"the CDN answered {response.status_code}")
            content_type = response.headers.get("content-type", "application/octet-stream")
            return Picture(response.content, content_type.split(";")[0].strip())
        raise PictureError(f"the CDN could not be read: {last}")
