"""The proof of the links of test cases and executions: Jira issue links against the requirements qTest
holds linked to the case or the execution's run (read back through linked-artifacts), their link types
against the requirement's description, and web links against the case's 'Web Links' property.

The requirements are read back by the reconciliation (``kinds/requirement.py``: each with its
'Description' value, its links and its external properties); this compares the raw Zephyr links with them,
never with the marts. A link is held by a requirement named after the issue (``<KEY> <summary>`` as Jira's
answer extracted into ``zephyr_raw.jira_issues`` gives them, else ``Jira issue <id>``), or by one the site's
Jira integration imported whose external properties name the payload's ``issueId`` or the key Jira answered
(``imported_issues``: the swagger's field names, unverified on a real site). The integration's requirement keeps its own
description, so a link type is not written anywhere there: COVERAGE is what qTest's link itself says (the
test covers the requirement), BLOCKS and RELATED are lines (not carried).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from zephyr_qtest.lib.details_block import details_of
from zephyr_qtest.lib.jira_issues import issue_names
from zephyr_qtest.lib.proof.fates import ACCEPT
from zephyr_qtest.lib.proof.ledger import Reason
from zephyr_qtest.lib.proof.source import Payload
from zephyr_qtest.lib.qtest.kinds.requirement import DESCRIPTION, LINKS, imported_issues, issue_refs
from zephyr_qtest.lib.qtest.kinds.vocabulary import REQUIREMENT, REQUIREMENT_LINK, TEST_CASE, TEST_RUN

if TYPE_CHECKING:
    from zephyr_qtest.lib.proof.compare import Proof, Properties

# The details-block label naming each Zephyr object linking to the issue (qtest_requirements).
LINKED_FROM = "Linked from"
WEB_LINKS_FIELD = "webLinks"
# The link type a link to an imported requirement carries by itself (qTest's requirement link: covered by).
COVERAGE = "COVERAGE"


def requirement_name(issue_id: Any, names: Mapping[str, str] | None = None) -> str:
    """The requirement a Jira issue becomes: ``<KEY> <summary>`` from Jira's answer (`names`, issue id ->
    name: ``jira_issues.issue_names``), else ``Jira issue <id>``."""
    return (names or {}).get(str(issue_id)) or f"Jira issue {issue_id}"


def linked_from(key: str, link_type: Any) -> str:
    """How the requirement's description names a Zephyr object linking to it, with the link type."""
    return f"{key} ({link_type})" if link_type else key


def web_link_line(link: Mapping[str, Any]) -> str:
    """A web link as the 'Web Links' property holds it: 'url (description) [TYPE]'."""
    line = str(link.get("url") or "")
    if link.get("description"):
        line += f" ({link['description']})"
    if link.get("type"):
        line += f" [{link['type']}]"
    return line


class LinkProof:
    """The requirements qTest holds, by the object they are linked to; one per proof."""

    def __init__(self, proof: Proof) -> None:
        # compare.py imports this module: its words and remedy are taken once it is loaded.
        from zephyr_qtest.lib.proof import compare

        assert proof.rb is not None
        self.case_words, self.execution_words, self.rerun = (
            compare.TEST_CASE_WORDS,
            compare.EXECUTION_WORDS,
            compare.RERUN,
        )
        self.not_sent = compare._not_sent
        self.proof = proof
        self.rb = proof.rb
        found = self.rb.found.get(REQUIREMENT.name, {})
        # Jira's answers as extracted: issue id -> the requirement name and the key.
        answers = proof.source.of("jira_issues")
        self.issue_names = issue_names([(obj.id, obj.payload) for obj in answers])
        self.issue_keys = {str(obj.id): obj.key for obj in answers if obj.key}
        self.names = {str(requirement.get("name")) for requirement in found.values()}
        self.imported = {issue for requirement in found.values() for issue in imported_issues(requirement)}
        # (linkArtifacts type, qTest id) -> the requirements linked to it
        self.linked: dict[tuple[str, int], list[Mapping[str, Any]]] = defaultdict(list)
        for requirement in found.values():
            for link in requirement.get(LINKS) or ():
                self.linked[link].append(requirement)

    def case(self, key: str, payload: Payload, case: Mapping[str, Any], props: Properties) -> None:
        """A test case's issue links and web links."""
        links = payload.get("links") or {}
        owner = (TEST_CASE.api_segment, int(case["id"]), key)
        for link in links.get("issues") or []:
            self._issue(self.case_words, key, key, link, owner)
        self.web_links(self.case_words, key, payload, props)

    def execution(self, key: str, linked_as: str, payload: Payload, run_key: str, run_id: Any) -> None:
        """An execution's issue links, on the run of its (cycle, case) (`run_key`, qTest id `run_id`).
        `linked_as`: how the requirement's description names it (its key, else its id)."""
        if run_id is None:
            return  # its run is missing: the execution's own line accounts for it
        owner = (TEST_RUN.api_segment, int(run_id), run_key)
        for link in (payload.get("links") or {}).get("issues") or []:
            self._issue(self.execution_words, key, linked_as, link, owner)

    def _issue(
        self,
        words: str,
        key: str,
        linked_as: str,
        link: Mapping[str, Any],
        owner: tuple[str, int, str],
    ) -> None:
        """One issue link: a requirement named after the issue linked to the owner (linkArtifacts type,
        qTest id, source key), whose description names the link with its type."""
        owner_type, owner_id, owner_key = owner
        owner_words = TEST_CASE.display_name if owner_type == TEST_CASE.api_segment else TEST_RUN.display_name
        issue = link.get("issueId")
        if issue is None:
            return
        name = requirement_name(issue, self.issue_names)
        refs = set(issue_refs(issue, self.issue_keys.get(str(issue))))
        shown = linked_from(str(issue), link.get("type"))
        self.proof.ledger.values_compared += 1
        linked = self.linked.get((owner_type, owner_id), [])
        imported = [r for r in linked if refs & imported_issues(r)]
        # The integration may name its requirement as the migration would ('<KEY> <summary>'): it is still
        # the integration's, with a description of its own.
        held = [r for r in linked if r.get("name") == name and r not in imported]
        if imported and not held:
            if link.get("type") not in (None, COVERAGE):
                self.proof.line(
                    words,
                    key,
                    "links.issues.type",
                    shown,
                    Reason.NOT_CARRIED,
                    ACCEPT,
                    f"linked to '{imported[0].get('name')}', which the site's Jira integration imported: its "
                    "description is the integration's, so the link type is not written there",
                )
            return
        if not held:
            link_key = f"jira-issue:{issue}|{owner_type}:{owner_key}"
            recorded = self.proof.source.recorded.get((REQUIREMENT_LINK.name, link_key))
            error = recorded.error if recorded is not None else None
            if name in self.names:
                detail = f"qTest holds the requirement '{name}' but it is not linked to the {owner_words}"
            elif refs & self.imported:
                detail = (
                    f"qTest holds the requirement its Jira integration imported for issue {issue} but it is not "
                    f"linked to the {owner_words}"
                )
            else:
                detail = f"qTest holds no requirement '{name}'"
            self.proof.line(
                words,
                key,
                "links.issues",
                shown,
                Reason.REFUSED if error and not self.not_sent(error) else Reason.OBJECT_MISSING,
                self.rerun,
                f"{detail} ({error})" if error else detail,
            )
            return
        self.proof.ledger.values_compared += 1
        expected = linked_from(linked_as, link.get("type"))
        if not any(expected in details_of(r.get(DESCRIPTION)).get(LINKED_FROM, []) for r in held):
            self.proof.line(
                words,
                key,
                "links.issues.type",
                shown,
                Reason.DIFFERS,
                self.rerun,
                f"the description of requirement '{name}' does not say '{LINKED_FROM}: {expected}'",
            )

    def web_links(self, words: str, key: str, payload: Payload, props: Properties) -> None:
        """A test case's (or an older version's: `words`) web links against its 'Web Links' property."""
        lines = [
            web_link_line(link)
            for link in (payload.get("links") or {}).get("webLinks") or []
            if link.get("url")
        ]
        if not lines:
            return
        label = self.proof.source.seeds.labels.get(("TestCase", WEB_LINKS_FIELD))
        qfield = props.catalog.get(label) if label else None
        if qfield is None:
            self.proof.check_property(words, key, "links.webLinks", label, props, lines)
            return
        held = {line.strip() for value in props.values(qfield) for line in value.splitlines()}
        for line in lines:
            self.proof.ledger.values_compared += 1
            if line.strip() not in held:
                self.proof.line(
                    words,
                    key,
                    "links.webLinks",
                    line,
                    Reason.DIFFERS,
                    self.rerun,
                    f"qTest '{label}' does not hold this line",
                )
