"""The HTML of inline images: found, pointed at their qTest copies, read from data: URIs and the CDN."""

from __future__ import annotations

import asyncio
import base64

import httpx
import pytest

from zephyr_qtest.lib.inline_images import (
    CDN_TOKEN_SETTING,
    CdnFetcher,
    PictureError,
    decode_data_uri,
    file_name,
    image_sources,
    rewrite_sources,
    without_sources,
)

CDN = "https://cloudfront.tm4j.smartbear.com/tenant/t1/project/10/embedded-ab12-1566319668503-a.png"
OTHER = "https://cloudfront.tm4j.smartbear.com/tenant/t1/project/10/embedded-cd34-1566319668504-b.png"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGM4IScHAAK2AQU0pnWqAAAAAElFTkSuQmCC"
)
DATA = "data:image/png;base64," + base64.b64encode(PNG).decode()
SESSION = "qz-sess-7f3e9a1c5b2d8e40"


def test_both_quotes_several_pictures_and_the_rest_untouched() -> None:
    text = f'<p>a &amp; b</p><img src="{CDN}" width="40"><IMG alt=x SRC=\'{OTHER}\'> tail <img src="{CDN}">'
    assert image_sources(text) == [CDN, OTHER, CDN]
    out = rewrite_sources(text, {CDN: "https://q/att/1", OTHER: "https://q/att/2"})
    assert out == (
        '<p>a &amp; b</p><img src="https://q/att/1" width="40"><IMG alt=x SRC=\'https://q/att/2\'> tail '
        '<img src="https://q/att/1">'
    )


def test_entities_in_the_address_are_decoded_to_match_and_the_new_address_is_escaped() -> None:
    source = CDN + "?a=1&b=2"
    text = f"<img src=\"{source.replace('&', '&amp;')}\"><img src='{source}'>"
    assert image_sources(text) == [source, source]
    out = rewrite_sources(text, {source: "https://q/att?id=1&x='y'"})
    assert (
        out == "<img src=\"https://q/att?id=1&amp;x='y'\"><img src='https://q/att?id=1&amp;x=&#x27;y&#x27;'>"
    )
    assert image_sources(out) == ["https://q/att?id=1&x='y'"] * 2


def test_pictures_not_in_the_map_and_text_without_pictures_stay_as_they_are() -> None:
    text = f'<img src="{CDN}"> and <img src="{OTHER}">'
    assert rewrite_sources(text, {OTHER: "https://q/2"}) == f'<img src="{CDN}"> and <img src="https://q/2">'
    assert rewrite_sources("no pictures <b>here</b>", {CDN: "x"}) == "no pictures <b>here</b>"
    assert image_sources(None) == [] and image_sources("<p>none</p>") == []


def test_data_uris_decode_with_or_without_padding_and_name_their_file() -> None:
    assert decode_data_uri(DATA) == (PNG, "image/png")
    assert decode_data_uri(DATA.rstrip("=")) == (PNG, "image/png")
    assert decode_data_uri("data:text/plain,hello%20there") == (b"hello there", "text/plain")
    with pytest.raises(ValueError):
        decode_data_uri("data:image/png;base64,@@@")
    assert file_name(DATA, "image/png").startswith("inline-") and file_name(DATA, "image/png").endswith(
        ".png"
    )
    assert file_name(CDN, "image/png") == "embedded-ab12-1566319668503-a.png"


def _cdn(request: httpx.Request) -> httpx.Response:
    # The three forms docsteady sends at once; this server reads the cookie only.
    cookie = request.headers.get("cookie", "")
    if f"JWT={SESSION}" not in cookie:
        return httpx.Response(403 if cookie else 401)
    assert request.headers["authorization"] == f"Bearer {SESSION}" and request.headers["jwt"] == SESSION
    return httpx.Response(200, content=PNG, headers={"content-type": "image/png"})


def _read(token: str | None, source: str) -> bytes:
    async def go() -> bytes:
        async with CdnFetcher(token, transport=httpx.MockTransport(_cdn)) as fetcher:
            return (await fetcher.read(source)).content

    return asyncio.run(go())


def test_the_cdn_needs_the_session_token_and_a_data_uri_does_not() -> None:
    assert _read(SESSION, CDN) == PNG
    assert _read(None, DATA) == PNG
    with pytest.raises(PictureError, match=CDN_TOKEN_SETTING):
        _read(None, CDN)
    with pytest.raises(PictureError, match=f"403.*{CDN_TOKEN_SETTING}"):
        _read("qz-wrong-5e1a77c2", CDN)


def test_the_loaders_check_compares_texts_without_the_pictures_addresses() -> None:
    text = f"<p>x</p><img src=\"{CDN}\" width=\"4\"><img alt='y' src='{DATA}'>"
    assert without_sources(text) == "<p>x</p><img src=\"\" width=\"4\"><img alt='y' src=''>"
    assert without_sources(
        rewrite_sources(text, {CDN: "https://q/1", DATA: "https://q/2"})
    ) == without_sources(text)
