"""Inline images: pictures embedded in Zephyr's rich text, proven object by object.

Zephyr Scale Cloud keeps them on SmartBear's CDN (``https://cloudfront.tm4j.smartbear.com/tenant/<tenant>/
project/<id>/embedded-...png``) behind a token that only the Zephyr app in a signed-in browser holds; the API
token cannot fetch them (REAL_SHAPES Zephyr 5), or in the text itself as ``data:`` URIs. The loader uploads
the pictures of a test case, its steps and its script as attachments of the qTest case, those of a plan's
objective as attachments of its release, and those of an execution's comment and its step results' actual
results as attachments of its qTest test log, and points the text at them (``qtest/kinds/inline_image.py``)
when it can read them: a data: URI always, a CDN picture with ``ZEPHYR_CDN_TOKEN``.

The proof does not take the loader's word for it: it reads each picture again from its source (the data: URI
decoded, the CDN fetched with the token) and every attachment of the qTest object back from qTest, and a
picture arrived only when the qTest text no longer names the source address but names an attachment of that
object whose bytes (sha256) are the source's. Any other picture is a ledger line naming the object, the field
and the address: the text check alone (tags stripped) would call it carried.

qTest cannot hold the pictures of a test cycle's description (nor of a plan's objective when plans become
test cycles), nor those of the comment of an execution not run yet (its run holds the comment, it has no
log): blob-handles take no test cycles or test runs (swagger). Those are lines saying so.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from zephyr_qtest.lib.inline_images import (
    CDN_TOKEN_SETTING,
    CdnFetcher,
    PictureError,
    image_sources,
    is_data_uri,
    shown,
)
from zephyr_qtest.lib.proof.ledger import Reason
from zephyr_qtest.lib.qtest.client import QtestClient

# A qTest object that holds pictures: (API segment, id), e.g. ("test-cases", 12).
Owner = tuple[str, int]

# The rich-text fields of each raw table (payload paths), as the API sends them.
RICH_TEXT: dict[str, tuple[str, ...]] = {
    "test_cases": ("objective", "precondition"),
    "test_steps": ("inline.description", "inline.testData", "inline.expectedResult"),
    "test_scripts": ("text",),
    "test_cycles": ("description",),
    "test_plans": ("objective",),
    "test_executions": ("comment",),
    "test_execution_steps": ("inline.actualResult",),
}
# The raw tables whose pictures the loader carries: a case's, its steps' and its script's onto the qTest test
# case; a plan's onto its release; an execution's comment and its step results' onto its test log.
CARRIED = (
    "test_cases",
    "test_steps",
    "test_scripts",
    "test_plans",
    "test_executions",
    "test_execution_steps",
)
# The object types qTest takes attachments on (swagger: blob-handles' objectType enum).
ATTACHMENT_TYPES = (
    "releases, builds, requirements, test-cases, test-logs, test-steps, test-step-logs and defects"
)
DETAIL = (
    "an inline image on SmartBear's CDN: the Zephyr API token cannot fetch it, so qTest's copy of the text "
    "still points at SmartBear (it breaks when the Jira site's access ends)"
)
# Pictures qTest cannot hold (the detail of their lines begins as every such line does).
CYCLE_CANNOT = (
    "qTest cannot hold it: qTest takes no attachments on test cycles (blob-handles take "
    f"{ATTACHMENT_TYPES}), so qTest's copy of the description still points at the picture's old address"
)
PLAN_AS_CYCLE_CANNOT = (
    "qTest cannot hold it: plans_as is test_cycle, so the plan is a qTest test cycle, and qTest takes no "
    f"attachments on test cycles (blob-handles take {ATTACHMENT_TYPES}); qTest's copy of the objective "
    "still points at the picture's old address"
)
UNRUN_CANNOT = (
    "qTest cannot hold it: the execution has not run, so qTest has no test log for it and its comment is a "
    f"property of its test run, which takes no attachments (blob-handles take {ATTACHMENT_TYPES}); qTest's "
    "copy of the comment still points at the picture's old address"
)
CYCLE_REMEDY = (
    "save the picture from the Zephyr page and attach it to a release, test case or requirement of the "
    "cycle in qTest, naming it in the cycle's description; or accept it in the acceptance file "
    "(ZEPHYR_QTEST_ACCEPTANCE)"
)
PLAN_AS_CYCLE_REMEDY = (
    "set ZEPHYR_QTEST_PLANS_AS=release (the default), where a plan's pictures are attachments of its release, "
    "and re-run; or accept it in the acceptance file (ZEPHYR_QTEST_ACCEPTANCE)"
)
UNRUN_REMEDY = (
    "save the picture from the Zephyr page and attach it to the qTest test case or to the run's first test "
    "log once it is executed; or accept it in the acceptance file (ZEPHYR_QTEST_ACCEPTANCE)"
)
REMEDY = (
    "save the picture from the Zephyr page and attach it to the qTest object by hand, or accept it in the "
    "acceptance file (ZEPHYR_QTEST_ACCEPTANCE)"
)
TOKEN_REMEDY = (
    f'set {CDN_TOKEN_SETTING} to a signed-in browser session\'s token (docs/runbook.md, "Inline images") and '
    "re-run `zephyr-qtest migrate` for the project; or " + REMEDY
)
REASON = Reason.NOT_CARRIED


@dataclass
class PictureEvidence:
    """What the proof read itself: each source picture's sha256 (or why it could not be read), and every
    attachment of the qTest cases, releases and test logs that hold pictures (address -> sha256 of the bytes
    read back)."""

    has_token: bool = False
    source: dict[str, str] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)
    # qTest object -> attachment address -> sha256
    attachments: dict[Owner, dict[str, str]] = field(default_factory=dict)

    def arrived(self, source: str, held_text: Any, owner: Owner | None) -> bool:
        """Whether qTest's text points at an attachment of its object holding the source's bytes, not at
        the source itself."""
        wanted = self.source.get(source)
        if wanted is None or owner is None:
            return False
        held = image_sources(held_text)
        if source in held:
            return False
        on_owner = self.attachments.get(owner, {})
        return any(on_owner.get(address) == wanted for address in held)

    def why_not(self, source: str) -> tuple[str, str]:
        """The detail and remedy of a picture that did not arrive."""
        if source in self.unreadable:
            return f"the picture could not be read: {self.unreadable[source]}", TOKEN_REMEDY
        if not is_data_uri(source) and not self.has_token:
            return f"{DETAIL}; no {CDN_TOKEN_SETTING} is set", TOKEN_REMEDY
        return "qTest's text does not point at an attachment of its object with the picture's bytes", (
            "re-run `zephyr-qtest migrate` for the project: a re-run sends only what is left"
        )


async def gather_evidence(
    client: QtestClient,
    project_id: int,
    payloads: Sequence[tuple[Owner | None, list[Any]]],
    cdn_token: str | None,
) -> PictureEvidence:
    """Reads the pictures of the carried texts (`payloads`: the qTest object they are on, None when qTest
    holds none, and its texts) from their sources and the attachments of those objects back from qTest."""
    async with CdnFetcher(cdn_token) as fetcher:
        evidence = PictureEvidence(has_token=fetcher.has_token)
        for owner, texts in payloads:
            sources = {source for text in texts for source in image_sources(text)}
            if not sources:
                continue
            for source in sources - evidence.source.keys() - evidence.unreadable.keys():
                if not fetcher.can_read(source):
                    continue
                try:
                    evidence.source[source] = (await fetcher.read(source)).sha256
                except PictureError as error:
                    evidence.unreadable[source] = str(error)
            if owner is None or owner in evidence.attachments:
                continue
            owner_type, owner_id = owner
            held: dict[str, str] = {}
            for attachment in await client.list_attachments(project_id, owner_type, owner_id):
                content = await client.download_attachment(
                    project_id, owner_type, owner_id, int(attachment["id"])
                )
                digest = hashlib.sha256(content).hexdigest()
                for address in (
                    attachment.get("web_url"),
                    *(link.get("href") for link in attachment.get("links") or []),
                ):
                    if address:
                        held[str(address)] = digest
            evidence.attachments[owner] = held
        return evidence


__all__ = ["RICH_TEXT", "PictureEvidence", "gather_evidence", "image_sources", "is_data_uri", "shown"]
