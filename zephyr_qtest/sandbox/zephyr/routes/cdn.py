"""SmartBear's CDN of inline images, as far as a migration meets it: the pictures pasted into rich text.

Real tenants keep them on ``https://cloudfront.tm4j.smartbear.com/tenant/<tenant>/project/<id>/embedded-
...png``, readable only with a signed-in browser session's token; the API token cannot fetch them
(REAL_SHAPES Zephyr 5; ``rmontemor-qase/qase-zephyr-scale-migration`` README and
``src/support/zs_cdn_session.py``). The sandbox serves them under ``/cdn/`` on its own host (the store
points the texts' addresses there) and takes the session token the ways ``lsst-dm/docsteady``
(``src/docsteady/utils.py``, ``get_zephy_image``) sends it: ``Authorization: Bearer``, a ``JWT`` header or a
``JWT`` cookie. Which of those the real CDN reads is unverified; the sandbox takes any. No token: 401; another
token (the API's included): 403. Each address answers its own small PNG, so two pictures differ in bytes.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

if TYPE_CHECKING:
    from zephyr_qtest.sandbox.zephyr.app import ZephyrSandbox

# Where the pictures are served (the CDN's own path after its host).
CDN_PREFIX = "/cdn"
CDN_HOST = "https://cloudfront.tm4j.smartbear.com"


def picture(path: str) -> bytes:
    """A 2x2 PNG whose colours come from the address: the same address, the same bytes."""
    digest = hashlib.sha256(path.encode("utf-8")).digest()
    rows = b"".join(b"\x00" + digest[row * 6 : row * 6 + 6] for row in range(2))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def presented_tokens(request: Request) -> list[str]:
    """The session tokens a request carries, in docsteady's three forms."""
    tokens = []
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        tokens.append(authorization[7:].strip())
    if request.headers.get("jwt"):
        tokens.append(request.headers["jwt"].strip())
    if request.cookies.get("JWT"):
        tokens.append(request.cookies["JWT"].strip())
    return [token for token in tokens if token]


def routes(sandbox: ZephyrSandbox) -> list[Route]:
    async def embedded(request: Request) -> Response:
        tokens = presented_tokens(request)
        if not tokens:
            return Response(b"Unauthorized", 401, media_type="text/plain")
        if sandbox.cdn_token not in tokens:
            return Response(b"Forbidden", 403, media_type="text/plain")
        path = request.url.path.removeprefix(CDN_PREFIX)
        if "/embedded-" not in path:
            return Response(b"Not Found", 404, media_type="text/plain")
        return Response(picture(path), 200, media_type="image/png")

    return [Route(CDN_PREFIX + "/tenant/{rest:path}", embedded, methods=["GET"])]
