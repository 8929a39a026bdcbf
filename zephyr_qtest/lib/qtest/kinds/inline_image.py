"""Inline images: each picture of an object's rich text uploaded once as an attachment of the qTest object
holding the text, and the text's ``src`` pointed at that attachment's ``web_url`` (swagger
``AttachmentResource``) before the text is written.

Test cases carry theirs (objective, precondition, their steps' and script's texts): a step's pictures go on
its test case, since qTest makes new steps (new ids) with every version of a case, while the case keeps its
attachments. Releases carry their plan's objective's; test logs their execution's comment's and step results'
(``manual_test_log.py``, ``automated_test_log.py``). qTest takes no attachments on test cycles or test runs:
their pictures are ledger lines saying so (``lib/proof/images.py``).

Exactly once: one id-map row (``inline_image``) per (object, picture address), ``pending`` before the upload
and ``done`` with the attachment's id, address and sha256 after it; a re-run finds it and uploads nothing.
The object's own hash carries a mark per picture, "on" when it can be carried now (a data: URI, or a CDN
picture with ``ZEPHYR_CDN_TOKEN`` set) or already was: a later run with a token re-sends only the objects
whose pictures it can now carry, and a run that changes nothing re-sends nothing.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from zephyr_qtest.lib.http import AmbiguousWriteError, ApiError
from zephyr_qtest.lib.inline_images import (
    CdnFetcher,
    PictureError,
    file_name,
    image_sources,
    rewrite_sources,
    shown,
    source_id,
)
from zephyr_qtest.lib.qtest.client import QtestClient
from zephyr_qtest.lib.qtest.id_map import Entry, IdMap
from zephyr_qtest.lib.qtest.kinds.attachment import content_identity
from zephyr_qtest.lib.qtest.kinds.base import Row, source_key
from zephyr_qtest.lib.qtest.kinds.vocabulary import INLINE_IMAGE

log = logging.getLogger(__name__)


def image_key(owner_type: str, owner_key: str, source: str) -> str:
    """The id-map key of one picture on one object: the same address in two fields is one upload."""
    return f"{owner_type}:{owner_key}:{source_id(source)}"


def attachment_address(uploaded: dict[str, Any]) -> str:
    """Where a reader finds an attachment: its ``web_url``, else its ``self`` link (swagger)."""
    if uploaded.get("web_url"):
        return str(uploaded["web_url"])
    for link in uploaded.get("links") or []:
        if link.get("rel") == "self" and link.get("href"):
            return str(link["href"])
    raise ValueError(f"qTest answered attachment {uploaded.get('id')} without a web_url or self link")


@dataclass
class InlineImages:
    """The pictures of one publishing stage: the id map's rows of them, the fetcher, and what failed."""

    client: QtestClient
    project_id: int
    id_map: IdMap
    fetcher: CdnFetcher
    known: dict[str, Entry] = field(default_factory=dict)
    # owner key -> addresses of its pictures that could not be read this run (with the reason)
    failed: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))

    async def load(self) -> None:
        self.known = await self.id_map.load(INLINE_IMAGE.name)

    def mark(self, owner_type: str, owner_key: str, texts: Iterable[Any]) -> str:
        """The part of an object's hash its pictures make: '' without pictures."""
        sources = sorted({source for text in texts for source in image_sources(text)})
        if not sources:
            return ""
        states = []
        for source in sources:
            entry = self.known.get(image_key(owner_type, owner_key, source))
            done = entry is not None and entry.state == "done"
            readable = self.fetcher.can_read(source) and source not in self.failed.get(owner_key, {})
            states.append(f"{source_id(source)}={'on' if done or readable else 'off'}")
        return ":img:" + hashlib.md5("|".join(states).encode()).hexdigest()[:12]

    async def settle(
        self, owner_type: str, owner_key: str, owner_id: int, texts: Iterable[Any]
    ) -> dict[str, str]:
        """Each picture of `texts` on the qTest object (`owner_type` is its API segment), uploaded unless it
        already is: picture address -> the attachment's address. A picture that cannot be read is left out
        (its text keeps the old address; the proof names it) and remembered in ``failed``."""
        addresses: dict[str, str] = {}
        for source in dict.fromkeys(source for text in texts for source in image_sources(text)):
            key = image_key(owner_type, owner_key, source)
            entry = self.known.get(key)
            if (
                entry is not None
                and entry.state == "done"
                and int(entry.detail.get("owner_id") or 0) == owner_id
            ):
                addresses[source] = str(entry.detail["web_url"])
                continue
            if not self.fetcher.can_read(source):
                continue
            try:
                picture = await self.fetcher.read(source)
            except PictureError as error:
                self.failed[owner_key][source] = str(error)
                log.warning(
                    "%s %s: inline image %s not carried: %s", owner_type, owner_key, shown(source), error
                )
                continue
            name = file_name(source, picture.content_type)
            found = None
            if entry is not None and entry.state == "pending":
                found = await self._find(owner_type, owner_id, name, picture.content)
            if found is None:
                await self.id_map.pending(INLINE_IMAGE.name, key, picture.sha256)
                try:
                    found = await self.client.upload_attachment(
                        self.project_id, owner_type, owner_id, name, picture.content_type, picture.content
                    )
                except AmbiguousWriteError as error:
                    # Left pending: the next run looks for it on the object before uploading again.
                    self.failed[owner_key][source] = str(error)
                    continue
                except ApiError as error:
                    await self.id_map.failed(INLINE_IMAGE.name, key, picture.sha256, str(error))
                    self.failed[owner_key][source] = str(error)
                    continue
            detail = {
                "owner_type": owner_type,
                "owner_id": owner_id,
                "web_url": attachment_address(found),
                "name": name,
                "size": len(picture.content),
                "sha256": picture.sha256,
            }
            await self.id_map.done(INLINE_IMAGE.name, key, int(found["id"]), picture.sha256, detail)
            self.known[key] = Entry(int(found["id"]), picture.sha256, "done", detail)
            addresses[source] = detail["web_url"]
        return addresses

    async def _find(self, owner_type: str, owner_id: int, name: str, content: bytes) -> dict[str, Any] | None:
        """After a lost upload: the attachment of that name and those bytes on the object, if qTest made it."""
        wanted = content_identity(content)
        for attachment in await self.client.list_attachments(self.project_id, owner_type, owner_id):
            if attachment.get("name") != name:
                continue
            held = await self.client.download_attachment(
                self.project_id, owner_type, owner_id, int(attachment["id"])
            )
            if content_identity(held) == wanted:
                return attachment
        return None


def rewritten(value: Any, addresses: dict[str, str]) -> Any:
    return rewrite_sources(value, addresses) if isinstance(value, str) and addresses else value


async def keep_failed_pictures_due(
    images: InlineImages | None,
    object_type: str,
    rows: Sequence[Row],
    payload_hash: Callable[[Row], str],
) -> None:
    """After a stage: each object of `object_type` (its id-map type) whose pictures could not be read this
    run (a wrong or expired token) keeps the hash of what it was written with, those pictures "off", so that
    a run with a good token writes it again. Every kind that carries pictures calls it after its pass."""
    if images is None or not images.failed:
        return
    entries = await images.id_map.load(object_type)
    for row in rows:
        key = source_key(row)
        entry = entries.get(key)
        if key in images.failed and entry is not None and entry.state == "done":
            await images.id_map.done(object_type, key, entry.qtest_id, payload_hash(row), entry.detail)
