"""Zephyr as extracted against qTest as read back, value by value: the ledger of what did not arrive.

The Zephyr side is the raw payloads (``source.py``); the qTest side is what the reconciliation read back
through the API (the same objects, paired through the id map). Each field follows its declared fate
(``fates.py``): a carried value is compared with the qTest field the fate names, in one normal form (text
as a reader sees it, numbers as numbers, instants as instants, lists item by item); a value that is not
carried is a ledger line with the fate's reason. Every line then gets the most precise reason the run
recorded: qTest refused the object, the qTest project lacks the field or the allowed value, no seed maps
the value, the mapping skipped the object, or qTest simply holds something else.

A Zephyr object that is not in qTest is ONE line (its values and children are not listed again).
"""

from __future__ import annotations

import html
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import TYPE_CHECKING, Any

from zephyr_qtest.lib.details_block import details_of
from zephyr_qtest.lib.proof import images
from zephyr_qtest.lib.proof.details import FOLDER as FOLDER_LABEL
from zephyr_qtest.lib.proof.details import (
    Detail,
    cycle_details,
    folder_chains,
    folder_paths,
    plan_details,
)
from zephyr_qtest.lib.proof.fates import Fate, fate_of
from zephyr_qtest.lib.proof.ledger import Ledger, LedgerLine, Reason, shorten
from zephyr_qtest.lib.proof.links import LinkProof
from zephyr_qtest.lib.proof.order import REORDER, Sibling, out_of_place
from zephyr_qtest.lib.proof.source import Payload, RawObject, Source, load_source
from zephyr_qtest.lib.proof.step_results import NOT_RUN, prove_step_results
from zephyr_qtest.lib.qtest.client import QtestClient
from zephyr_qtest.lib.qtest.comparison import instant
from zephyr_qtest.lib.qtest.field_setup import CREATE_FIELDS_SETTING
from zephyr_qtest.lib.qtest.fields import PICKLIST_TYPES, USER_LIST, Field, FieldCatalog
from zephyr_qtest.lib.qtest.kinds.base import ReadBack
from zephyr_qtest.lib.qtest.kinds.manual_test_log import RUN_OF_LOG
from zephyr_qtest.lib.qtest.kinds.vocabulary import (
    ATTACHMENT,
    MODULE,
    RELEASE,
    TEST_CASE,
    TEST_CASE_VERSION,
    TEST_CYCLE,
    TEST_LOG,
    TEST_RUN,
)
from zephyr_qtest.lib.qtest.reconcile import Reconciliation, read_back_and_reconcile

if TYPE_CHECKING:
    from zephyr_qtest.lib.store import Store

# The Zephyr object types in words, as ledger lines and counts name them.
TEST_CASE_WORDS = "test case"
VERSION_WORDS = "test case version"
TEST_STEP_WORDS = "test step"
TEST_CYCLE_WORDS = "test cycle"
TEST_PLAN_WORDS = "test plan"
EXECUTION_WORDS = "test execution"
RESULT_WORDS = "execution step"
FOLDER_WORDS = "folder"
ATTACHMENT_WORDS = "attachment"
OBJECT = "(object)"

RERUN = "re-run `zephyr-qtest migrate` for the project: a re-run sends only what is left"
ACCEPT = "accept it in the acceptance file (ZEPHYR_QTEST_ACCEPTANCE)"
SEEDS = "dbt_project/seeds"
# user_map.csv lives apart (`zephyr-qtest users` writes it; ZEPHYR_QTEST_USER_MAP_DIR moves it).
USER_MAP_FILE = "dbt_project/people/user_map.csv"


def seed_file(seed: str) -> str:
    """Where the seed file the user edits is (as a remedy names it)."""
    return USER_MAP_FILE if seed == "user_map" else f"{SEEDS}/{seed}.csv"


async def prove(
    store: Store, client: QtestClient, project_key: str, *, cdn_token: str | None = None
) -> tuple[Reconciliation, Ledger]:
    """The project reconciled (marts against qTest: the loader's own check) and proven (raw payloads
    against qTest): the ledger of every value that did not arrive. `cdn_token` (``ZEPHYR_CDN_TOKEN``) reads
    the inline images on Zephyr's CDN again, to compare with the attachments qTest holds."""
    outcome, read_back = await read_back_and_reconcile(store, client, project_key)
    source = load_source(store, project_key, outcome.target_site)
    ledger = Ledger(project_key, outcome.target, outcome.target_site)
    pictures = images.PictureEvidence()
    if read_back is not None:
        pictures = await images.gather_evidence(
            client, read_back.project_id, carried_texts(source, read_back.ids), cdn_token
        )
    Proof(source, read_back, ledger, pictures=pictures).run()
    return outcome, ledger


def execution_keys(source: Source) -> dict[str, str]:
    """Zephyr execution id -> its key (a step result names its execution by id)."""
    return {
        str(execution.id): str(execution.key)
        for execution in source.of("test_executions")
        if execution.id is not None and execution.key
    }


def picture_owner(entity: str, obj: RawObject, executions: Mapping[str, str]) -> tuple[str, str]:
    """The id-map type and key of the qTest object a carried text's pictures go on: a case's, its steps' and
    its script's on the test case, a plan's on its release, an execution's comment and its step results' on
    its test log."""
    if entity == "test_execution_steps":
        return TEST_LOG.name, executions.get(str(obj.parent_key), str(obj.parent_key))
    if entity == "test_executions":
        return TEST_LOG.name, str(obj.key or obj.id)
    if entity == "test_plans":
        return RELEASE.name, str(obj.key)
    return TEST_CASE.name, str(obj.parent_key if entity in ("test_steps", "test_scripts") else obj.key)


def carried_texts(
    source: Source, ids: Mapping[str, Mapping[str, int]]
) -> list[tuple[images.Owner | None, list[Any]]]:
    """The rich texts whose pictures the loader carries, by the qTest object they go on (None: qTest holds
    none): `picture_owner`."""
    texts: dict[tuple[str, str], list[Any]] = defaultdict(list)
    executions = execution_keys(source)
    for entity in images.CARRIED:
        for obj in source.of(entity):
            owner = picture_owner(entity, obj, executions)
            texts[owner].extend(_at(obj.payload, path) for path in images.RICH_TEXT[entity])
    segments = {
        TEST_CASE.name: TEST_CASE.api_segment,
        TEST_LOG.name: TEST_LOG.api_segment,
        RELEASE.name: RELEASE.api_segment,
    }
    return [
        (
            None if (qtest_id := ids.get(kind, {}).get(key)) is None else (segments[kind], qtest_id),
            found,
        )
        for (kind, key), found in texts.items()
    ]


# ------------------------------------------------------------------------------------------ normal forms

_BREAK = re.compile(r"<\s*(br|/p|/div|/li|/h\d)\s*/?\s*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")


def reader_text(value: Any) -> str:
    """Text as a reader sees it: tags gone (line breaks kept as spaces), entities decoded, blanks collapsed."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else str(value)
    text = _TAG.sub("", _BREAK.sub(" ", value))
    return " ".join(html.unescape(text).split())


def number(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value).strip()).normalize() if str(value).strip() != "" else None
    except (InvalidOperation, ValueError):
        return None


_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def same_value(expected: Any, held: str) -> bool:
    """A Zephyr value against a qTest property value (text), compared in the value's normal form: a
    boolean, a number, an instant (a date-time picker answers in its own offset), else text."""
    if isinstance(expected, bool):
        return held.strip().lower() == ("true" if expected else "false")
    if isinstance(expected, int | float | Decimal):
        return number(expected) == number(held)
    if isinstance(expected, str) and _DATE_TIME.match(held.strip()):
        # A day (Zephyr's custom date) is held as a date-time at its midnight, in any offset.
        day = expected + "T00:00:00Z" if _DAY.match(expected) else expected
        if _DATE_TIME.match(day):
            try:
                return instant(day) == instant(held.strip())
            except ValueError:
                pass
    left, right = reader_text(expected), reader_text(held)
    return left == right or (left.lower() == right.lower() and bool(left))


def is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


# ------------------------------------------------------------------------------------------ the comparison


@dataclass
class Properties:
    """The properties of one qTest object, decoded by field label through the project's catalog."""

    catalog: FieldCatalog
    by_id: dict[int, Mapping[str, Any]]

    @classmethod
    def of(cls, catalog: FieldCatalog, found: Mapping[str, Any]) -> Properties:
        return cls(
            catalog,
            {int(p["field_id"]): p for p in found.get("properties") or [] if p.get("field_id") is not None},
        )

    def values(self, qfield: Field) -> list[str]:
        """The field's value(s) as a reader sees them: picklist labels, user names, or the text."""
        prop = self.by_id.get(qfield.id)
        if prop is None:
            return []
        raw = str(prop.get("field_value") or "").strip()
        if raw == "":
            return []
        if qfield.data_type in PICKLIST_TYPES or qfield.data_type == USER_LIST or qfield.allowed:
            try:
                ids = json.loads(raw) if raw.startswith("[") else [raw]
            except ValueError:
                ids = [raw]
            if qfield.data_type == USER_LIST:
                users = {user_id: name for name, user_id in self.catalog.users.items()}
                return [users.get(int(i), str(i)) if str(i).isdigit() else str(i) for i in ids]
            labels = {value: label for label, value in qfield.allowed.items()}
            return [labels.get(int(i), str(i)) if str(i).isdigit() else str(i) for i in ids]
        return [raw]


@dataclass
class Proof:
    source: Source
    rb: ReadBack | None
    ledger: Ledger
    # qTest object id -> its parent's id, for modules and cycles (from the trees read back)
    parents: dict[str, dict[int, int | None]] = field(default_factory=dict)
    # Zephyr folder id -> name
    folder_names: dict[int, str] = field(default_factory=dict)
    # Zephyr plan id -> key
    plan_keys: dict[int, str] = field(default_factory=dict)
    # Zephyr case key -> its steps, in order
    case_steps: dict[str, list[RawObject]] = field(default_factory=dict)
    # The inline images as the proof read them itself (sources and qTest's attachments).
    pictures: images.PictureEvidence = field(default_factory=images.PictureEvidence)
    # Step result key -> the text qTest holds for its actual result (its step log's, or its note line).
    result_texts: dict[str, Any] = field(default_factory=dict)

    # ---------------------------------------------------------------- lines

    def line(
        self,
        object_type: str,
        key: str,
        path: str,
        value: Any,
        reason: Reason,
        remedy: str,
        detail: str = "",
    ) -> None:
        self.ledger.add(
            LedgerLine(object_type, key, path, shorten(value), reason, remedy, shorten(detail, 300))
        )

    def not_carried(self, entity: str, object_type: str, key: str, payload: Payload) -> None:
        """A line for every non-empty value of a field whose fate is 'not carried': one per item of a list
        and per field of a free-form map (custom fields)."""
        seen: set[str] = set()
        for path, _ in _leaves(payload):
            fate = fate_of(entity, path)
            if fate is None or fate.fate is not Fate.NOT_CARRIED or fate.path in seen:
                continue
            seen.add(fate.path)
            whole = _at(payload, fate.path)
            if fate.path.endswith("customFields") and isinstance(whole, Mapping):
                items = [(f"{fate.path}.{name}", value) for name, value in whole.items()]
            elif isinstance(whole, list):
                items = [(fate.path, item) for item in whole]
            else:
                items = [(fate.path, whole)]
            for item_path, value in items:
                if not is_empty(value):
                    self.line(
                        object_type,
                        key,
                        item_path,
                        self._describe(fate.path, value),
                        Reason.NOT_CARRIED,
                        fate.remedy or ACCEPT,
                        fate.rule,
                    )

    @contextmanager
    def guard(self, object_type: str, obj: RawObject) -> Iterator[None]:
        """One object compared: a payload of a shape the comparison does not expect becomes a line naming
        the object and the error, and every other object is still compared."""
        try:
            yield
        # Any error: one odd payload must not stop the proof of every other object.
        except Exception as error:
            key = obj.key or (f"folder:{obj.id}" if object_type == FOLDER_WORDS else str(obj.id))
            self.line(
                object_type,
                key,
                OBJECT,
                key,
                Reason.UNREADABLE,
                "report it with the object's payload (zephyr_raw); the other objects were compared",
                f"{type(error).__name__}: {error}",
            )

    def _describe(self, path: str, value: Any) -> str:
        """A value that is not carried, as a reader knows it: a status, priority or folder by its name."""
        if isinstance(value, Mapping) and value.get("id") is not None:
            vocabulary = {"status": "statuses", "priority": "priorities", "environment": "environments"}
            if path in vocabulary:
                return self.source.name(vocabulary[path], value) or _describe(value)
            if path == "folder":
                return self.folder_names.get(int(value["id"]), _describe(value))
        return _describe(value)

    def missing_object(
        self, object_type: str, key: str, value: Any, recorded_as: tuple[str, str], skipped_in: str | None
    ) -> None:
        """One line for a Zephyr object qTest does not hold, with the most precise reason recorded."""
        id_map_type, source_key = recorded_as
        recorded = self.source.recorded.get((id_map_type, source_key))
        skip = self.source.skipped.get((skipped_in, source_key)) if skipped_in else None
        if recorded is not None and recorded.state == "failed" and _not_sent(recorded.error or ""):
            # The run never asked qTest: something the object needs (its module, cycle, run, case or
            # owner) is not in qTest, and that object has its own line.
            self.line(
                object_type,
                key,
                OBJECT,
                value,
                Reason.OBJECT_MISSING,
                f"change what kept the object it needs out of qTest (its own line), then {RERUN}",
                f"not sent: what it needs is not in qTest ({recorded.error})",
            )
        elif recorded is not None and recorded.state == "failed":
            self.line(
                object_type,
                key,
                OBJECT,
                value,
                Reason.REFUSED,
                _remedy_for_refusal(recorded.error or ""),
                recorded.error or "",
            )
        elif recorded is not None and recorded.state == "pending":
            self.line(
                object_type,
                key,
                OBJECT,
                value,
                Reason.OBJECT_MISSING,
                "re-run: qTest is asked for it first and it is sent again only if qTest does not hold it",
                "sent, but qTest's answer was lost (pending)",
            )
        elif skip:
            self.line(object_type, key, OBJECT, value, Reason.NOT_CARRIED, ACCEPT, skip)
        else:
            detail = (
                "never sent"
                if recorded is None
                else f"the id map says {recorded.state} but qTest does not hold it"
            )
            self.line(object_type, key, OBJECT, value, Reason.OBJECT_MISSING, RERUN, detail)

    # ---------------------------------------------------------------- properties

    def check_property(
        self,
        object_type: str,
        key: str,
        path: str,
        label: str | None,
        props: Properties,
        expected: Any,
        *,
        seed: str | None = None,
        seed_hit: bool = True,
    ) -> None:
        """A Zephyr value against the qTest property `label`. A list is compared item by item (one missing
        label is one line and never hides the others). `seed`: the seed whose rule gave the value, and
        `seed_hit` whether a row of it covered the value."""
        if is_empty(expected):
            return
        items = expected if isinstance(expected, list) else [expected]
        self.ledger.values_compared += len(items)
        if not label:
            self.line(
                object_type,
                key,
                path,
                expected,
                Reason.NO_MAPPING,
                f"give the field a qTest label in {SEEDS}/custom_field_map.csv, then re-run",
                "custom_field_map.csv maps it to no qTest field",
            )
            return
        qfield = props.catalog.get(label)
        if qfield is None and seed and not seed_hit:
            # The mapping left the value out (no seed row), so the run never needed the field: creating it
            # would not bring the value; the seed row would (and the run then creates the field).
            self.line(
                object_type,
                key,
                path,
                expected,
                Reason.NO_MAPPING,
                f"add a row for '{expected}' to {seed_file(seed)}, then re-run",
                f"{seed}.csv has no row for it, and the qTest project has no field '{label}'",
            )
            return
        if qfield is None:
            self.line(
                object_type,
                key,
                path,
                expected,
                Reason.FIELD_MISSING,
                f"create the field '{label}' on qTest {_qtest_type(object_type)} (Administration, "
                f"Field Settings; or let the run create it: {CREATE_FIELDS_SETTING}=1) or map it to another "
                "label in custom_field_map.csv, then re-run",
                f"the qTest project has no field '{label}'",
            )
            return
        held = props.values(qfield)
        if isinstance(expected, list) and qfield.data_type not in PICKLIST_TYPES:
            # A list in a text field: the items as one text, in order.
            items, held = [", ".join(reader_text(item) for item in expected)], [", ".join(held)]
        for item in items:
            if any(same_value(item, value) for value in held):
                continue
            allowed = not qfield.allowed or _label_of(item) in qfield.allowed
            if qfield.data_type == USER_LIST and str(item).lower() not in props.catalog.users:
                reason, remedy = (
                    Reason.NO_MAPPING,
                    (
                        f"run `zephyr-qtest users`, or add a row for this account to {USER_MAP_FILE} (its qTest user "
                        "name), then re-run"
                        if not seed_hit
                        else f"add the qTest user '{item}' to the project, then re-run"
                    ),
                )
            elif not allowed and seed and not seed_hit:
                reason, remedy = (
                    Reason.NO_MAPPING,
                    (
                        f"add a row for '{item}' to {seed_file(seed)} (the qTest value it becomes), then re-run"
                    ),
                )
            elif not allowed:
                reason, remedy = (
                    Reason.VALUE_NOT_ALLOWED,
                    (
                        f"add '{item}' to the allowed values of qTest field '{label}' (or let the run add "
                        f"it: {CREATE_FIELDS_SETTING}=1)"
                        + (f" or map it in {seed_file(seed)}" if seed else "")
                        + ", then re-run"
                    ),
                )
            else:
                reason, remedy = Reason.DIFFERS, RERUN
            detail = f"qTest '{label}' holds {', '.join(held) if held else 'nothing'}"
            self.line(object_type, key, path, item, reason, remedy, detail)

    def check_mapped(
        self,
        object_type: str,
        key: str,
        path: str,
        label: str | None,
        props: Properties,
        value: str,
        mapping: Mapping[str, str],
        seed: str,
    ) -> None:
        """A Zephyr value that a seed maps (a priority, a status, an account): qTest must hold what the seed's
        row makes of it, or the value itself where no row covers it."""
        self.check_property(
            object_type,
            key,
            path,
            label,
            props,
            mapping.get(value, value),
            seed=seed,
            seed_hit=value in mapping,
        )

    def check_value(
        self, object_type: str, key: str, path: str, expected: Any, held: Any, *, contains: bool = False
    ) -> None:
        """A Zephyr value against a qTest attribute (text as a reader sees it; `contains`: the qTest text
        holds it among other text, as a description that also names the Zephyr key)."""
        if is_empty(expected) and is_empty(held):
            return
        self.ledger.values_compared += 1
        want, got = reader_text(expected), reader_text(held)
        if want == got or (contains and want in got):
            return
        self.line(
            object_type,
            key,
            path,
            expected,
            Reason.DIFFERS,
            RERUN,
            f"qTest holds {shorten(got, 120) or 'nothing'}",
        )

    def check_parent(
        self, object_type: str, key: str, path: str, folder: Any, id_map_type: str, found: Mapping[str, Any]
    ) -> None:
        """The object sits under what its Zephyr folder became (a module, or a cycle), as qTest's tree says."""
        assert self.rb is not None
        self.ledger.values_compared += 1
        expected_parent = self.rb.ids.get(id_map_type, {}).get(f"folder:{folder}")
        held_parent = self.parents[id_map_type].get(int(found["id"]))
        if expected_parent is not None and held_parent != expected_parent:
            self.line(
                object_type,
                key,
                path,
                folder,
                Reason.DIFFERS,
                RERUN,
                f"qTest has it under {held_parent or 'the root'}",
            )

    # ---------------------------------------------------------------- per Zephyr object type

    def run(self) -> None:
        if self.rb is None:
            for entity, words in (
                ("test_cases", TEST_CASE_WORDS),
                ("test_cycles", TEST_CYCLE_WORDS),
                ("test_plans", TEST_PLAN_WORDS),
                ("test_executions", EXECUTION_WORDS),
            ):
                for obj in self.source.of(entity):
                    self.ledger.count(words).in_zephyr += 1
                    self.line(
                        words,
                        obj.key or str(obj.id),
                        OBJECT,
                        obj.key,
                        Reason.OBJECT_MISSING,
                        RERUN,
                        "no qTest project holds the project yet",
                    )
            return
        self.parents = {
            MODULE.name: _tree_parents(self.rb.found.get(MODULE.name, {}), "children"),
            TEST_CYCLE.name: _tree_parents(self.rb.found.get(TEST_CYCLE.name, {}), TEST_CYCLE.api_segment),
        }
        self.folder_names = {
            int(folder.id): str(folder.payload.get("name") or "")
            for folder in self.source.of("folders")
            if folder.id
        }
        self.plan_keys = {int(plan.id): str(plan.key) for plan in self.source.of("test_plans") if plan.id}
        steps: dict[str, list[RawObject]] = defaultdict(list)
        for step in self.source.of("test_steps"):
            steps[str(step.parent_key)].append(step)
        self.case_steps = {key: sorted(items, key=lambda s: s.position or 0) for key, items in steps.items()}
        self.folders()
        self.test_cases()
        self.test_case_versions()
        self.test_cycles()
        self.test_plans()
        self.test_executions()
        self.attachments()
        self.inline_images()
        self.replaced_characters()

    def _found(self, id_map_type: str, source_key: str) -> Mapping[str, Any] | None:
        assert self.rb is not None
        qtest_id = self.rb.ids.get(id_map_type, {}).get(source_key)
        return None if qtest_id is None else self.rb.found.get(id_map_type, {}).get(qtest_id)

    def folders(self) -> None:
        assert self.rb is not None
        # (folder type, Zephyr parent, qTest parent) -> the folders of that group that qTest holds
        siblings: dict[tuple[str, Any, int | None], list[Sibling]] = defaultdict(list)
        indexes: dict[str, int] = {}
        for obj in self.source.of("folders"):
            with self.guard(FOLDER_WORDS, obj):
                payload, key = obj.payload, f"folder:{obj.id}"
                folder_type = payload.get("folderType")
                id_map_type = {"TEST_CASE": MODULE.name, "TEST_CYCLE": TEST_CYCLE.name}.get(str(folder_type))
                count = self.ledger.count(FOLDER_WORDS)
                count.in_zephyr += 1
                if folder_type == "TEST_PLAN":
                    self._plan_folder(key, obj)
                    continue
                if id_map_type is None:
                    self.line(
                        FOLDER_WORDS,
                        key,
                        OBJECT,
                        payload.get("name"),
                        Reason.NOT_CARRIED,
                        ACCEPT,
                        f"qTest has nothing to make of a {folder_type} folder",
                    )
                    continue
                found = self._found(id_map_type, key)
                if found is None:
                    self.missing_object(FOLDER_WORDS, key, payload.get("name"), (id_map_type, key), None)
                    continue
                count.in_qtest += 1
                self.check_value(FOLDER_WORDS, key, "name", payload.get("name"), found.get("name"))
                parent = payload.get("parentId")
                if parent is not None:
                    self.check_parent(FOLDER_WORDS, key, "parentId", parent, id_map_type, found)
                index = payload.get("index")
                if isinstance(index, int) and not isinstance(index, bool):
                    qtest_id = int(found["id"])
                    order = found.get("order")
                    group = (str(folder_type), parent, self.parents[id_map_type].get(qtest_id))
                    siblings[group].append(
                        Sibling(
                            key,
                            (index, int(obj.id or 0)),
                            (order if isinstance(order, int) else None, qtest_id),
                        )
                    )
                    indexes[key] = index
                self.not_carried("folders", FOLDER_WORDS, key, payload)
        for group in siblings.values():
            self.ledger.values_compared += len(group)
            for folder in out_of_place(group):
                self.line(
                    FOLDER_WORDS,
                    folder.key,
                    "index",
                    indexes[folder.key],
                    Reason.DIFFERS,
                    REORDER,
                    f"of its {folder.of} sibling folders that qTest holds, Zephyr puts it {folder.zephyr_rank}"
                    f" and qTest {folder.qtest_rank}",
                )

    @cached_property
    def _folder_chains(self) -> dict[int, list[int]]:
        return folder_chains(self.source.of("folders"))

    @cached_property
    def _folder_paths(self) -> dict[int, str]:
        return folder_paths(self.source.of("folders"))

    def _plan_folder(self, key: str, obj: RawObject) -> None:
        """A folder of test plans: qTest has no folders of releases, so its path is in the Zephyr details
        ('Folder') of every plan in it or below it. A folder that holds no plan is named nowhere."""
        folder_id = int(obj.id or 0)
        path = self._folder_paths.get(folder_id, "")
        plans = [
            plan
            for plan in self.source.of("test_plans")
            if folder_id
            in self._folder_chains.get(int(_id_or_zero((plan.payload.get("folder") or {}).get("id"))), [])
        ]
        if not plans:
            self.line(
                FOLDER_WORDS,
                key,
                OBJECT,
                obj.payload.get("name"),
                Reason.NOT_CARRIED,
                ACCEPT,
                "qTest has no folders of releases: a folder of test plans is named in the Zephyr details of "
                "the plans in it, and this one holds none",
            )
            return
        self.ledger.values_compared += 1
        named = [
            value
            for plan in plans
            for found in [
                self._found(RELEASE.name, str(plan.key)) or self._found(TEST_CYCLE.name, str(plan.key))
            ]
            if found is not None
            for value in details_of(found.get("description")).get(FOLDER_LABEL, [])
        ]
        if any(value == path or value.startswith(f"{path} / ") for value in named):
            self.ledger.count(FOLDER_WORDS).accounted += 1
            return
        self.line(
            FOLDER_WORDS,
            key,
            OBJECT,
            path,
            Reason.DIFFERS,
            RERUN,
            f"no Zephyr details of its {len(plans)} test plan(s) in qTest name the folder",
        )

    def test_cases(self) -> None:
        assert self.rb is not None
        steps = self.case_steps
        scripts = {str(script.parent_key): script for script in self.source.of("test_scripts")}
        links = LinkProof(self)
        for obj in self.source.of("test_cases"):
            with self.guard(TEST_CASE_WORDS, obj):
                payload, key = obj.payload, str(obj.key)
                count = self.ledger.count(TEST_CASE_WORDS)
                count.in_zephyr += 1
                self.ledger.count(TEST_STEP_WORDS).in_zephyr += len(steps.get(key, []))
                found = self._found(TEST_CASE.name, key)
                if found is None:
                    self.missing_object(
                        TEST_CASE_WORDS, key, payload.get("name"), (TEST_CASE.name, key), None
                    )
                    # Its steps are missing with it: the case's line accounts for them.
                    self.ledger.count(TEST_STEP_WORDS).accounted += len(steps.get(key, []))
                    continue
                count.in_qtest += 1
                self.check_value(TEST_CASE_WORDS, key, "name", payload.get("name") or key, found.get("name"))
                self.check_value(
                    TEST_CASE_WORDS, key, "objective", payload.get("objective"), found.get("description")
                )
                self.check_value(
                    TEST_CASE_WORDS,
                    key,
                    "precondition",
                    payload.get("precondition"),
                    found.get("precondition"),
                )
                folder = (payload.get("folder") or {}).get("id")
                if folder is not None:
                    self.ledger.values_compared += 1
                    module = self.rb.ids.get(MODULE.name, {}).get(f"folder:{folder}")
                    if module is None or found.get("parent_id") != module:
                        self.line(
                            TEST_CASE_WORDS,
                            key,
                            "folder",
                            folder,
                            Reason.DIFFERS,
                            RERUN,
                            f"qTest has it in module {found.get('parent_id')}",
                        )
                props = Properties.of(self.rb.test_case_fields, found)
                self.case_values(TEST_CASE_WORDS, key, key, payload, props)
                links.case(key, payload, found, props)
                self.not_carried("test_cases", TEST_CASE_WORDS, key, payload)
                self.test_steps(key, steps.get(key, []), scripts.get(key), found)

    def case_values(self, words: str, key: str, case_key: str, payload: Payload, props: Properties) -> None:
        """The values a test case (or an older version of it: `words`) holds in its properties: the Zephyr
        key (`case_key`), priority, status, owner, labels, component, estimated time, created on, the
        issue links' property and custom fields. One rule for the current version and the older ones."""
        seeds = self.source.seeds

        def label(zephyr_field: str, default: str | None = None) -> str | None:
            return seeds.labels.get(("TestCase", zephyr_field), default)

        self.check_property(words, key, "key", label("key"), props, case_key)
        priority = self.source.name("priorities", payload.get("priority"))
        if priority is not None:
            self.check_mapped(
                words, key, "priority", label("priority"), props, priority, seeds.priorities, "priority_map"
            )
        status = self.source.name("statuses", payload.get("status"))
        if status is not None:
            self.check_mapped(
                words,
                key,
                "status",
                label("status"),
                props,
                status,
                seeds.statuses.get("TEST_CASE", {}),
                "status_map",
            )
        owner = (payload.get("owner") or {}).get("accountId")
        if owner:
            self.check_mapped(words, key, "owner", label("owner"), props, owner, seeds.users, "user_map")
        self.check_property(words, key, "labels", label("labels"), props, list(payload.get("labels") or []))
        component = (payload.get("component") or {}).get("id")
        self.check_property(words, key, "component", label("component"), props, component)
        self.check_property(
            words, key, "estimatedTime", label("estimatedTime"), props, payload.get("estimatedTime")
        )
        self.check_property(words, key, "createdOn", label("createdOn"), props, payload.get("createdOn"))
        issues = [
            link.get("target") or str(link.get("issueId"))
            for link in (payload.get("links") or {}).get("issues") or []
        ]
        if issues:
            self._check_issue_links(words, key, label("issueLinks"), props, issues)
        for name, value in (payload.get("customFields") or {}).items():
            path = f"customFields.{name}"
            self.check_property(words, key, path, label(path, name), props, _custom_value(value, seeds))

    def _check_issue_links(
        self, words: str, key: str, label: str | None, props: Properties, issues: list[str]
    ) -> None:
        qfield = props.catalog.get(label) if label else None
        if qfield is None:
            self.check_property(words, key, "links.issues", label, props, issues)
            return
        held = {item.strip() for value in props.values(qfield) for item in value.split(",")}
        for issue in issues:
            self.ledger.values_compared += 1
            if issue not in held:
                self.line(
                    words,
                    key,
                    "links.issues",
                    issue,
                    Reason.DIFFERS,
                    RERUN,
                    f"qTest '{label}' does not name it",
                )

    def test_steps(
        self, case_key: str, steps: list[RawObject], script: RawObject | None, case: Mapping[str, Any]
    ) -> None:
        assert self.rb is not None
        held = sorted(case.get("test_steps") or [], key=lambda step: int(step.get("order") or 0))
        count = self.ledger.count(TEST_STEP_WORDS)
        if script is not None and not steps:
            self.ledger.values_compared += 1
            text = reader_text(script.payload.get("text"))
            if text and not any(text in reader_text(step.get("description")) for step in held):
                self.line(
                    TEST_STEP_WORDS,
                    f"{case_key}#script",
                    "text",
                    text,
                    Reason.DIFFERS,
                    RERUN,
                    "no step of the qTest case holds the script",
                )
            return
        for index, step in enumerate(sorted(steps, key=lambda s: s.position or 0)):
            key = f"{case_key}#{step.position}"
            payload = step.payload
            if index >= len(held):
                self.missing_object(TEST_STEP_WORDS, key, _step_words(payload), ("test_step", key), None)
                continue
            count.in_qtest += 1
            actual = held[index]
            inline = payload.get("inline")
            if isinstance(inline, Mapping):
                description = reader_text(actual.get("description"))
                self.check_value(
                    TEST_STEP_WORDS,
                    key,
                    "inline.description",
                    inline.get("description"),
                    actual.get("description"),
                    contains=True,
                )
                data = reader_text(inline.get("testData"))
                if data:
                    self.ledger.values_compared += 1
                    if data not in description:
                        self.line(
                            TEST_STEP_WORDS,
                            key,
                            "inline.testData",
                            data,
                            Reason.DIFFERS,
                            RERUN,
                            "the qTest step's description does not hold it",
                        )
                self.check_value(
                    TEST_STEP_WORDS,
                    key,
                    "inline.expectedResult",
                    inline.get("expectedResult"),
                    actual.get("expected"),
                )
            call = payload.get("testCase")
            if isinstance(call, Mapping) and call.get("testCaseKey"):
                self._check_call(key, str(call["testCaseKey"]), actual)
            self._check_step_details(key, payload, actual)
            self.not_carried("test_steps", TEST_STEP_WORDS, key, payload)

    def _check_step_details(self, key: str, payload: Payload, actual: Mapping[str, Any]) -> None:
        """A step's custom fields (by name) and a call's parameters ('Parameter <name>'), in the "Zephyr
        details" block of the qTest step's description: qTest steps have neither."""
        details = details_of(actual.get("description"))
        inline = payload.get("inline")
        fields = inline.get("customFields") if isinstance(inline, Mapping) else None
        expected: list[tuple[str, str, Any]] = [
            (f"inline.customFields.{name}", str(name), value)
            for name, value in (fields.items() if isinstance(fields, Mapping) else ())
        ]
        call = payload.get("testCase")
        parameters = call.get("parameters") if isinstance(call, Mapping) else None
        expected += [
            ("testCase.parameters", f"Parameter {parameter.get('name') or ''}", parameter.get("value"))
            for parameter in parameters or []
            if isinstance(parameter, Mapping)
        ]
        for path, label, value in expected:
            if is_empty(value):
                continue
            self.ledger.values_compared += 1
            if isinstance(value, list):
                value = ", ".join(reader_text(item) for item in value)
            held = details.get(label, [])
            if any(same_value(value, item) for item in held):
                continue
            shown = f"{label}={_describe(value)}" if path == "testCase.parameters" else value
            self.line(
                TEST_STEP_WORDS,
                key,
                path,
                shown,
                Reason.DIFFERS,
                RERUN,
                f"the 'Zephyr details' of the qTest step's description hold {', '.join(held) or 'no ' + label}",
            )

    def _check_call(self, key: str, callee: str, actual: Mapping[str, Any]) -> None:
        assert self.rb is not None
        self.ledger.values_compared += 1
        callee_id = self.rb.ids.get(TEST_CASE.name, {}).get(callee)
        held = actual.get("called_test_case_id")
        if callee_id is not None and held == callee_id:
            return
        text = reader_text(actual.get("description"))
        if callee_id is None and not callee.startswith(f"{self.source.project_key}-"):
            reason, remedy, detail = (
                Reason.NOT_CARRIED,
                ACCEPT,
                (
                    "the called case is in another Zephyr project; qTest links calls within one project only "
                    "(the step's text names it)"
                ),
            )
        elif callee_id is None:
            reason, remedy, detail = Reason.OBJECT_MISSING, RERUN, f"the called case {callee} is not in qTest"
        elif "call cycle" in text:
            reason, remedy, detail = (
                Reason.NOT_CARRIED,
                ACCEPT,
                (
                    "the cases call each other in a loop, which qTest cannot link; the step's text names the call"
                ),
            )
        else:
            reason, remedy, detail = Reason.DIFFERS, RERUN, f"qTest's step calls {held or 'nothing'}"
        self.line(TEST_STEP_WORDS, key, "testCase.testCaseKey", callee, reason, remedy, detail)

    def check_details(
        self, object_type: str, key: str, description: Any, details: Iterable[Detail], where: str
    ) -> None:
        """Each value of `details` against the "Zephyr details" block of the description qTest holds
        (`where` names that description in the line)."""
        held = details_of(description if isinstance(description, str) else None)
        for detail in details:
            if is_empty(detail.value):
                continue
            self.ledger.values_compared += 1
            values = held.get(detail.label, [])
            if any(_same_detail(detail, value) for value in values):
                continue
            self.line(
                object_type,
                key,
                detail.path,
                detail.value,
                Reason.DIFFERS,
                RERUN,
                f"the Zephyr details of the {where} in qTest "
                + (f"say '{detail.label}: {', '.join(values)}'" if values else f"have no '{detail.label}'"),
            )

    def test_cycles(self) -> None:
        assert self.rb is not None
        releases = self.rb.ids.get(RELEASE.name, {})
        # qTest test cycle id -> the release qTest lists it directly under (read with the releases).
        release_of = {
            child: release
            for child, release in _tree_parents(
                self.rb.found.get(RELEASE.name, {}), TEST_CYCLE.api_segment
            ).items()
            if release is not None
        }
        paths = self._folder_paths
        # Zephyr cycle id -> the keys of the plans that list it among their cycles.
        plans_of_cycle: dict[int, set[str]] = defaultdict(set)
        for plan in self.source.of("test_plans"):
            for link in (plan.payload.get("links") or {}).get("testCycles") or []:
                if isinstance(link, Mapping) and plan.key:
                    plans_of_cycle[_id_or_zero(link.get("testCycleId"))].add(str(plan.key))
        for obj in self.source.of("test_cycles"):
            with self.guard(TEST_CYCLE_WORDS, obj):
                payload, key = obj.payload, str(obj.key)
                count = self.ledger.count(TEST_CYCLE_WORDS)
                count.in_zephyr += 1
                found = self._found(TEST_CYCLE.name, key)
                if found is None:
                    self.missing_object(
                        TEST_CYCLE_WORDS, key, payload.get("name"), (TEST_CYCLE.name, key), None
                    )
                    continue
                count.in_qtest += 1
                self.check_value(TEST_CYCLE_WORDS, key, "name", payload.get("name") or key, found.get("name"))
                self.check_value(
                    TEST_CYCLE_WORDS,
                    key,
                    "description",
                    payload.get("description"),
                    found.get("description"),
                    contains=True,
                )
                folder = (payload.get("folder") or {}).get("id")
                plans = (payload.get("links") or {}).get("testPlans") or []
                # The plans of the project it is linked to, from either end of the link: the first by key
                # holds the cycle (the mart's rule), the others are named.
                plan_keys = sorted(
                    {
                        self.plan_keys[plan_id]
                        for plan_id in (_id_or_zero(link.get("testPlanId")) for link in plans)
                        if plan_id in self.plan_keys
                    }
                    | plans_of_cycle.get(_id_or_zero(obj.id), set())
                )
                under_release = bool(plan_keys) and bool(releases)
                if plans and not releases:
                    for plan_key in sorted(
                        self.plan_keys.get(_id_or_zero(link.get("testPlanId")), str(link.get("testPlanId")))
                        for link in plans
                    ):
                        self.line(
                            TEST_CYCLE_WORDS,
                            key,
                            "links.testPlans",
                            plan_key,
                            Reason.NOT_CARRIED,
                            "set ZEPHYR_QTEST_PLANS_AS=release to place each cycle under its plan's release, "
                            "then re-run; or accept it",
                            "plans_as is test_cycle: the plan is a cycle of its own, without its cycles",
                        )
                if releases:
                    for link in plans:
                        if _id_or_zero(link.get("testPlanId")) not in self.plan_keys:
                            self.line(
                                TEST_CYCLE_WORDS,
                                key,
                                "links.testPlans",
                                link.get("testPlanId"),
                                Reason.NOT_CARRIED,
                                ACCEPT,
                                "the test plan is not a plan of the project: no release of it to go under",
                            )
                if under_release:
                    self._check_release_placement(key, plan_keys[0], releases, release_of, found)
                elif folder is not None:
                    self.check_parent(TEST_CYCLE_WORDS, key, "folder", folder, TEST_CYCLE.name, found)
                self.check_details(
                    TEST_CYCLE_WORDS,
                    key,
                    found.get("description"),
                    cycle_details(
                        payload,
                        lambda status: self.source.name("statuses", status),
                        folder_path=paths.get(int(folder)) if under_release and folder is not None else None,
                        other_plans=plan_keys[1:] if under_release else [],
                    ),
                    "test cycle's description",
                )
                self.not_carried("test_cycles", TEST_CYCLE_WORDS, key, payload)

    def _check_release_placement(
        self,
        key: str,
        plan_key: str,
        releases: Mapping[str, int],
        release_of: Mapping[int, int],
        found: Mapping[str, Any],
    ) -> None:
        """A cycle linked to plans sits directly under the release of its first plan, as qTest lists it."""
        self.ledger.values_compared += 1
        expected = releases.get(plan_key)
        held = release_of.get(int(found["id"]))
        if expected is not None and held == expected:
            return
        if expected is None:
            reason, detail = Reason.OBJECT_MISSING, f"the release of test plan {plan_key} is not in qTest"
        else:
            reason, detail = (
                Reason.DIFFERS,
                f"qTest has it under {f'release {held}' if held else 'no release'}, not under release "
                f"{expected} of test plan {plan_key}",
            )
        self.line(TEST_CYCLE_WORDS, key, "links.testPlans", plan_key, reason, RERUN, detail)

    def test_plans(self) -> None:
        assert self.rb is not None
        paths = self._folder_paths
        for obj in self.source.of("test_plans"):
            with self.guard(TEST_PLAN_WORDS, obj):
                payload, key = obj.payload, str(obj.key)
                count = self.ledger.count(TEST_PLAN_WORDS)
                count.in_zephyr += 1
                as_release = self._found(RELEASE.name, key)
                found = as_release or self._found(TEST_CYCLE.name, key)
                if found is None:
                    id_map_type = (
                        RELEASE.name if (RELEASE.name, key) in self.source.recorded else TEST_CYCLE.name
                    )
                    self.missing_object(TEST_PLAN_WORDS, key, payload.get("name"), (id_map_type, key), None)
                    continue
                count.in_qtest += 1
                self.check_value(TEST_PLAN_WORDS, key, "name", payload.get("name") or key, found.get("name"))
                self.check_value(
                    TEST_PLAN_WORDS,
                    key,
                    "objective",
                    payload.get("objective"),
                    found.get("description"),
                    contains=True,
                )
                self.check_details(
                    TEST_PLAN_WORDS,
                    key,
                    found.get("description"),
                    plan_details(payload, lambda status: self.source.name("statuses", status), paths),
                    "release's description" if as_release is not None else "test cycle's description",
                )
                self.not_carried("test_plans", TEST_PLAN_WORDS, key, payload)

    def test_executions(self) -> None:
        assert self.rb is not None
        cases = {int(case.id): str(case.key) for case in self.source.of("test_cases") if case.id is not None}
        cycles = {
            int(cycle.id): str(cycle.key) for cycle in self.source.of("test_cycles") if cycle.id is not None
        }
        results: dict[str, list[RawObject]] = defaultdict(list)
        for result in self.source.of("test_execution_steps"):
            results[str(result.parent_key)].append(result)
        seeds = self.source.seeds
        statuses = seeds.statuses.get("TEST_EXECUTION", {})
        qtest_statuses = {name.lower() for name in self.rb.statuses}
        links = LinkProof(self)
        # The run of each unrun execution holds the values of the latest one (the highest id) of the run's.
        unrun_latest: dict[str, Any] = {}
        for obj in self.source.of("test_executions"):
            if not obj.payload.get("actualEndDate") and obj.id is not None:
                run_key = self._run_key(obj.payload, cases, cycles)
                unrun_latest[run_key] = max(int(obj.id), int(unrun_latest.get(run_key) or obj.id))
        for obj in self.source.of("test_executions"):
            with self.guard(EXECUTION_WORDS, obj):
                payload = obj.payload
                key = str(obj.key) if obj.key else f"execution:{obj.id}"
                count = self.ledger.count(EXECUTION_WORDS)
                count.in_zephyr += 1
                own_results = sorted(results.get(str(obj.id), []), key=lambda r: r.position or 0)
                self.ledger.count(RESULT_WORDS).in_zephyr += len(own_results)
                case_key = cases.get(int((payload.get("testCase") or {}).get("id") or 0)) or _case_key_of(
                    payload
                )
                run_key = self._run_key(payload, cases, cycles)
                status = self.source.name("statuses", payload.get("testExecutionStatus"))
                log = self._found(TEST_LOG.name, key)
                if log is None:
                    if self._found(TEST_RUN.name, run_key) is None:
                        self.missing_object(
                            EXECUTION_WORDS,
                            key,
                            f"run of {case_key}",
                            (TEST_RUN.name, run_key),
                            "qtest_test_runs",
                        )
                        # Its step results are missing with it: its line accounts for them.
                        self.ledger.count(RESULT_WORDS).accounted += len(own_results)
                        continue
                    if not payload.get("actualEndDate"):
                        # Not run yet: its run is all qTest holds of it (qTest makes a log only of a result).
                        count.in_qtest += 1
                        self._unexecuted(key, payload, run_key, unrun_latest.get(run_key) == obj.id)
                        run_id = self.rb.ids.get(TEST_RUN.name, {}).get(run_key)
                        links.execution(key, str(obj.key or obj.id), payload, run_key, run_id)
                        for result in own_results:
                            if self._shown_by_run(f"{key}#{result.position}", result, statuses):
                                continue
                            self.line(
                                RESULT_WORDS,
                                f"{key}#{result.position}",
                                OBJECT,
                                self._result_words(result),
                                Reason.NOT_CARRIED,
                                ACCEPT,
                                NOT_RUN,
                            )
                        continue
                    mapped = statuses.get(status or "", status or "")
                    if status and mapped.lower() not in qtest_statuses:
                        self.line(
                            EXECUTION_WORDS,
                            key,
                            "testExecutionStatus",
                            status,
                            Reason.NO_MAPPING,
                            status_map_remedy(status, " (or the status to qTest's execution statuses)"),
                            "qTest knows no such execution status: the test log was not made",
                        )
                        # Not in qTest, its line on its status; its step results missing with it.
                        count.accounted += 1
                        self.ledger.count(RESULT_WORDS).accounted += len(own_results)
                        continue
                    self.missing_object(EXECUTION_WORDS, key, status, (TEST_LOG.name, key), "qtest_test_logs")
                    self.ledger.count(RESULT_WORDS).accounted += len(own_results)
                    continue
                count.in_qtest += 1
                self.ledger.values_compared += 1
                expected_run = self.rb.ids.get(TEST_RUN.name, {}).get(run_key)
                if expected_run is not None and log.get(RUN_OF_LOG) != expected_run:
                    self.line(
                        EXECUTION_WORDS,
                        key,
                        "testCycle",
                        run_key,
                        Reason.DIFFERS,
                        RERUN,
                        f"the qTest log is on run {log.get(RUN_OF_LOG)}",
                    )
                if status is not None:
                    self.ledger.values_compared += 1
                    held_status = str((log.get("status") or {}).get("name") or "")
                    mapped = statuses.get(status, status)
                    if held_status.lower() != mapped.lower():
                        reason = Reason.NO_MAPPING if status not in statuses else Reason.DIFFERS
                        remedy = status_map_remedy(status) if status not in statuses else RERUN
                        self.line(
                            EXECUTION_WORDS,
                            key,
                            "testExecutionStatus",
                            status,
                            reason,
                            remedy,
                            f"qTest's log is {held_status or 'without status'}",
                        )
                end = payload.get("actualEndDate")
                self._check_instant(key, "actualEndDate", end, log.get("exe_end_date"))
                taken = payload.get("executionTime")
                if end and taken is not None and instant(end) is not None:
                    start = instant(end) - timedelta(milliseconds=int(taken))  # type: ignore[operator]
                    self._check_instant(
                        key, "executionTime", start.isoformat(), log.get("exe_start_date"), shown=taken
                    )
                comment = payload.get("comment")
                if comment:
                    self.check_value(EXECUTION_WORDS, key, "comment", comment, log.get("note"), contains=True)
                props = Properties.of(self.rb.test_run_fields, log)

                def label(zephyr_field: str, default: str | None = None) -> str | None:
                    return seeds.labels.get(("TestExecution", zephyr_field), default)

                self.check_property(EXECUTION_WORDS, key, "key", label("key"), props, key)
                for person in ("executedById", "assignedToId"):
                    account = payload.get(person)
                    if account:
                        self.check_mapped(
                            EXECUTION_WORDS,
                            key,
                            person,
                            label(person),
                            props,
                            account,
                            seeds.users,
                            "user_map",
                        )
                self._check_values(key, payload, props)
                self.not_carried("test_executions", EXECUTION_WORDS, key, payload)
                links.execution(key, str(obj.key or obj.id), payload, run_key, log.get(RUN_OF_LOG))
                self.step_results(key, own_results, log, statuses)

    def _run_key(self, payload: Payload, cases: Mapping[int, str], cycles: Mapping[int, str]) -> str:
        """The run of (cycle, case); executions outside any cycle of the project are in the ad-hoc one."""
        case_key = cases.get(int((payload.get("testCase") or {}).get("id") or 0)) or _case_key_of(payload)
        cycle_id = (payload.get("testCycle") or {}).get("id")
        cycle_key = cycles.get(int(cycle_id)) if cycle_id else None
        return f"{cycle_key or 'adhoc:' + self.source.project_key}|{case_key or '?'}"

    def _check_values(self, key: str, payload: Payload, props: Properties) -> None:
        """The values an execution's log holds (or, not run yet, its run): environment, estimated time,
        Jira version, custom fields."""
        seeds = self.source.seeds

        def label(zephyr_field: str, default: str | None = None) -> str | None:
            return seeds.labels.get(("TestExecution", zephyr_field), default)

        environment = self.source.name("environments", payload.get("environment"))
        self.check_property(EXECUTION_WORDS, key, "environment", label("environment"), props, environment)
        self.check_property(
            EXECUTION_WORDS, key, "estimatedTime", label("estimatedTime"), props, payload.get("estimatedTime")
        )
        version = (payload.get("jiraProjectVersion") or {}).get("id")
        self.check_property(
            EXECUTION_WORDS, key, "jiraProjectVersion", label("jiraProjectVersion"), props, version
        )
        for name, value in (payload.get("customFields") or {}).items():
            path = f"customFields.{name}"
            self.check_property(
                EXECUTION_WORDS, key, path, label(path, name), props, _custom_value(value, seeds)
            )

    def _shown_by_run(self, result_key: str, result: RawObject, statuses: Mapping[str, str]) -> bool:
        """Whether a step result of an execution that has not run says no more than its qTest run shows:
        a status that status_map makes qTest's default (the status of a run without a log, every step
        unexecuted) and no actual result. Such a result is in qTest as that state (the caller found the run
        and no log of the execution); any other is a line, since only a test log holds step results."""
        assert self.rb is not None
        inline = result.payload.get("inline") or {}
        status = self.source.name("statuses", inline.get("status"))
        default = self.rb.default_status
        if not status or not default or reader_text(inline.get("actualResult")):
            return False
        if statuses.get(status, status).lower() != default.lower():
            return False
        self.ledger.count(RESULT_WORDS).in_qtest += 1
        self.ledger.values_compared += 1
        self.not_carried("test_execution_steps", RESULT_WORDS, result_key, result.payload)
        return True

    def _unexecuted(self, key: str, payload: Payload, run_key: str, latest: bool) -> None:
        """The values of an execution without a result: qTest has no log to hold them, so its run holds
        them, of the latest such execution of the run's (`latest`): its assignee in the run's 'Assigned To',
        its comment in a property of the run (a run has no note); its executor has no place (a run is
        executed by no one until it has a log)."""
        assert self.rb is not None
        why = "not run yet in Zephyr: qTest makes no test log for it, and a run has no executor"
        executor = payload.get("executedById")
        if not is_empty(executor):
            self.line(EXECUTION_WORDS, key, "executedById", executor, Reason.NOT_CARRIED, ACCEPT, why)
        run = self._found(TEST_RUN.name, run_key)
        if latest and run is not None:
            props = Properties.of(self.rb.test_run_fields, run)
            self._check_values(key, payload, props)
            seeds = self.source.seeds
            assignee = payload.get("assignedToId")
            if assignee:
                self.check_mapped(
                    EXECUTION_WORDS,
                    key,
                    "assignedToId",
                    seeds.labels.get(("TestExecution", "assignedToId")),
                    props,
                    assignee,
                    seeds.users,
                    "user_map",
                )
            self.check_property(
                EXECUTION_WORDS,
                key,
                "comment",
                seeds.labels.get(("TestExecution", "comment")),
                props,
                payload.get("comment"),
            )
        else:
            shadowed = (
                f"not run yet in Zephyr, like a later execution of the same qTest run ({run_key}): the "
                "run holds that one's values (qTest has one run per cycle and case, and no log of it)"
            )
            values = [
                ("assignedToId", payload.get("assignedToId")),
                ("comment", payload.get("comment")),
                ("environment", self.source.name("environments", payload.get("environment"))),
                ("estimatedTime", payload.get("estimatedTime")),
                ("jiraProjectVersion", (payload.get("jiraProjectVersion") or {}).get("id")),
                *(
                    (f"customFields.{name}", item)
                    for name, item in (payload.get("customFields") or {}).items()
                ),
            ]
            for path, value in values:
                if not is_empty(value):
                    self.line(EXECUTION_WORDS, key, path, value, Reason.NOT_CARRIED, ACCEPT, shadowed)
        self.not_carried("test_executions", EXECUTION_WORDS, key, payload)

    def _check_instant(self, key: str, path: str, expected: Any, held: Any, shown: Any = None) -> None:
        if not expected:
            return
        self.ledger.values_compared += 1
        try:
            same = instant(expected) == instant(held)
        except ValueError:
            same = False
        if not same:
            self.line(
                EXECUTION_WORDS,
                key,
                path,
                shown if shown is not None else expected,
                Reason.DIFFERS,
                RERUN,
                f"qTest holds {held or 'nothing'}",
            )

    def _result_words(self, result: RawObject) -> str:
        inline = result.payload.get("inline") or {}
        status = self.source.name("statuses", inline.get("status"))
        actual = reader_text(inline.get("actualResult"))
        return f"{status or 'no status'}" + (f": {actual}" if actual else "")

    def step_results(
        self, key: str, results: list[RawObject], log: Mapping[str, Any], statuses: Mapping[str, str]
    ) -> None:
        """Every result of an execution in its log: a step log or a line of its note (`step_results`)."""
        prove_step_results(self, key, results, log, statuses)

    def attachments(self) -> None:
        assert self.rb is not None
        for obj in self.source.of("attachments"):
            with self.guard(ATTACHMENT_WORDS, obj):
                key = str(obj.key)
                count = self.ledger.count(ATTACHMENT_WORDS)
                count.in_zephyr += 1
                found = self._found(ATTACHMENT.name, key)
                name = obj.payload.get("name")
                if found is None:
                    self.missing_object(
                        ATTACHMENT_WORDS, key, name, (ATTACHMENT.name, key), "qtest_attachments"
                    )
                    continue
                count.in_qtest += 1
                self.check_value(ATTACHMENT_WORDS, key, "name", name, found.get("name"))
                self.ledger.values_compared += 1
                if (found.get("size"), found.get("sha256")) != (obj.size_bytes, obj.sha256):
                    self.line(
                        ATTACHMENT_WORDS,
                        key,
                        "(bytes)",
                        name,
                        Reason.DIFFERS,
                        RERUN,
                        f"qTest holds {found.get('size')} bytes with another SHA-256",
                    )

    def test_case_versions(self) -> None:
        """Each older version of a case against the version qTest lists for it (its name, objective,
        precondition and the values its properties hold, by the current version's rules); a line for its
        steps, which Zephyr's API does not give; and the log of each execution that ran against one, which
        must be on the qTest version it became."""
        assert self.rb is not None
        links = LinkProof(self)
        newest: dict[str, int] = defaultdict(lambda: 1)
        for version in self.source.of("test_case_versions"):
            with self.guard(VERSION_WORDS, version):
                payload, case_key = version.payload, str(version.parent_key)
                number = int(version.position or 0)
                key = f"{case_key} version {number}"
                newest[case_key] = max(newest[case_key], number + 1)
                count = self.ledger.count(VERSION_WORDS)
                count.in_zephyr += 1
                recorded_as = (TEST_CASE_VERSION.name, f"{case_key}@{number}")
                found = self._found(*recorded_as)
                if found is None:
                    self.missing_object(VERSION_WORDS, key, payload.get("name"), recorded_as, None)
                    continue
                count.in_qtest += 1
                self.check_value(
                    VERSION_WORDS, key, "name", payload.get("name") or case_key, found.get("name")
                )
                self.check_value(
                    VERSION_WORDS, key, "objective", payload.get("objective"), found.get("description")
                )
                self.check_value(
                    VERSION_WORDS, key, "precondition", payload.get("precondition"), found.get("precondition")
                )
                props = Properties.of(self.rb.test_case_fields, found)
                self.case_values(VERSION_WORDS, key, case_key, payload, props)
                links.web_links(VERSION_WORDS, key, payload, props)
                steps = fate_of("test_case_versions", "steps")
                assert steps is not None
                self.line(
                    VERSION_WORDS,
                    key,
                    "steps",
                    f"the steps of {key}",
                    Reason.NOT_CARRIED,
                    steps.remedy,
                    steps.rule,
                )
                self.not_carried("test_case_versions", VERSION_WORDS, key, payload)
        replayed = self.rb.ids.get(TEST_CASE_VERSION.name, {})
        for execution in self.source.of("test_executions"):
            case_key, number = _case_version_of(execution.payload)
            if case_key not in newest or number is None or number >= newest[case_key]:
                continue
            key = str(execution.key) if execution.key else f"execution:{execution.id}"
            log = self._found(TEST_LOG.name, key)
            if log is None:
                # No log: the execution's own line says why (not run yet, or missing); a run in qTest is
                # one per cycle and case, whatever version each of its executions ran against.
                continue
            self.ledger.values_compared += 1
            version_id = replayed.get(f"{case_key}@{number}")
            held = log.get("test_case_version_id")
            if version_id is not None and held is not None and int(held) == version_id:
                continue
            self.line(
                EXECUTION_WORDS,
                key,
                "testCase (version)",
                f"{case_key} version {number}",
                Reason.DIFFERS if version_id is not None else Reason.OBJECT_MISSING,
                # A log keeps the version it was made on (an update does not move it).
                ACCEPT if version_id is not None else RERUN,
                f"it ran against an older version of the case; its log is on qTest version {held or '?'}"
                + (
                    f", not on {version_id}, the version that one became"
                    if version_id is not None
                    else ", since qTest does not hold that version (see its own line)"
                ),
            )

    def inline_images(self) -> None:
        """A line per picture embedded in rich text (`images.py`) that did not arrive: a carried text's
        picture arrives when qTest's text points at an attachment of its object (`picture_owner`) with its
        bytes. The pictures of a test cycle, of a plan that is a test cycle and of the comment of an execution
        not run yet are lines qTest cannot hold: qTest takes no attachments on test cycles and test runs."""
        executions = execution_keys(self.source)
        for entity, paths in images.RICH_TEXT.items():
            for obj in self.source.of(entity):
                if entity == "test_steps":
                    key = f"{obj.parent_key}#{obj.position}"
                elif entity == "test_execution_steps":
                    key = f"{executions.get(str(obj.parent_key), obj.parent_key)}#{obj.position}"
                elif entity == "test_scripts":
                    key = f"{obj.parent_key}#script"
                else:
                    key = obj.key or str(obj.id)
                cannot = self._cannot_hold_pictures(entity, obj, key)
                for path in paths:
                    for source in dict.fromkeys(images.image_sources(_at(obj.payload, path))):
                        if cannot is not None:
                            detail, remedy = cannot
                        else:
                            self.ledger.values_compared += 1
                            owner, held = self._held_text(entity, obj, path, key, executions)
                            if self.pictures.arrived(source, held, owner):
                                continue
                            detail, remedy = self.pictures.why_not(source)
                        self.line(
                            _ENTITY_WORDS[entity],
                            key,
                            f"{path} (inline image)",
                            images.shown(source),
                            images.REASON,
                            remedy,
                            detail,
                        )

    def _cannot_hold_pictures(self, entity: str, obj: RawObject, key: str) -> tuple[str, str] | None:
        """The detail and remedy of the pictures of a text qTest cannot hold (no attachments on its object),
        or None: a test cycle's description; a plan's objective when the plan is a test cycle (plans_as);
        the comment of an execution not run yet (its run holds the comment; it has no log)."""
        ids = {} if self.rb is None else self.rb.ids
        if entity == "test_cycles":
            return images.CYCLE_CANNOT, images.CYCLE_REMEDY
        if entity == "test_plans":
            as_cycle = key in ids.get(TEST_CYCLE.name, {}) and key not in ids.get(RELEASE.name, {})
            return (images.PLAN_AS_CYCLE_CANNOT, images.PLAN_AS_CYCLE_REMEDY) if as_cycle else None
        if entity == "test_executions":
            unrun = not obj.payload.get("actualEndDate") and key not in ids.get(TEST_LOG.name, {})
            return (images.UNRUN_CANNOT, images.UNRUN_REMEDY) if unrun else None
        return None

    def _held_text(
        self, entity: str, obj: RawObject, path: str, key: str, executions: Mapping[str, str]
    ) -> tuple[images.Owner | None, Any]:
        """The qTest object a carried text's pictures are on (None: not there), and the text qTest holds for
        it (None: not there)."""
        ids = {} if self.rb is None else self.rb.ids
        kind, owner_key = picture_owner(entity, obj, executions)
        owner_id = ids.get(kind, {}).get(owner_key)
        segment = {TEST_LOG.name: TEST_LOG.api_segment, RELEASE.name: RELEASE.api_segment}.get(
            kind, TEST_CASE.api_segment
        )
        owner = None if owner_id is None else (segment, owner_id)
        if entity == "test_execution_steps":
            return owner, self.result_texts.get(key)
        if entity in ("test_executions", "test_plans"):
            found = self._found(kind, owner_key) or {}
            return owner, found.get("note" if entity == "test_executions" else "description")
        return owner, self._held_case_text(entity, obj, path)

    def _held_case_text(self, entity: str, obj: RawObject, path: str) -> Any:
        """The text qTest's case holds for a carried text of the case, its steps or its script (None: not
        there). A script is the step after the case's steps (``qtest_test_steps``: one step, after any)."""
        if entity == "test_cases":
            case_key = str(obj.key)
            found = self._found(TEST_CASE.name, case_key) or {}
            return found.get("description" if path == "objective" else "precondition")
        case_key = str(obj.parent_key)
        found = self._found(TEST_CASE.name, case_key) or {}
        held = sorted(found.get("test_steps") or [], key=lambda step: int(step.get("order") or 0))
        ordered = sorted(self.case_steps.get(case_key, []), key=lambda step: step.position or 0)
        if entity == "test_scripts":
            index: int | None = len(ordered)
        else:
            index = next((i for i, step in enumerate(ordered) if step.position == obj.position), None)
        if index is None or index >= len(held):
            return None
        return held[index].get("expected" if path == "inline.expectedResult" else "description")

    def replaced_characters(self) -> None:
        """The characters the raw layer could not store (NUL, lone surrogates): named, object by object,
        under the object's key as the other lines name it, with the text as stored (U+FFFD in place)."""
        executions = execution_keys(self.source)
        for (entity, object_ref), fields in sorted(self.source.replaced.items()):
            # The extraction names an object "<entity> <key or id>" (raw_store's object ref).
            raw_key = object_ref.removeprefix(f"{entity} ")
            stored = next(
                (obj for obj in self.source.of(entity) if (obj.key or str(obj.id)) == raw_key), None
            )
            key = raw_key
            if entity == "test_execution_steps" and stored is not None:
                # A step result is "<execution key>#<position>", as step_results names it.
                key = f"{executions.get(str(stored.parent_key), stored.parent_key)}#{stored.position}"
            for path, reason in fields:
                value = _at(stored.payload, path) if stored is not None and path else None
                self.line(
                    _ENTITY_WORDS.get(entity, entity),
                    key,
                    path or OBJECT,
                    value if isinstance(value, str) else reason,
                    Reason.REPLACED,
                    "correct the text in Zephyr and re-run, or accept it",
                    reason,
                )


# ------------------------------------------------------------------------------------------ helpers

_ENTITY_WORDS = {
    "test_cases": TEST_CASE_WORDS,
    "test_steps": TEST_STEP_WORDS,
    "test_scripts": TEST_STEP_WORDS,
    "test_cycles": TEST_CYCLE_WORDS,
    "test_plans": TEST_PLAN_WORDS,
    "test_executions": EXECUTION_WORDS,
    "test_execution_steps": RESULT_WORDS,
    "folders": FOLDER_WORDS,
    "attachments": ATTACHMENT_WORDS,
}


def _leaves(payload: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    """(path, value) of every field, maps walked (`a.b`), lists kept whole."""
    if isinstance(payload, Mapping):
        for name, value in payload.items():
            path = f"{prefix}.{name}" if prefix else str(name)
            if isinstance(value, Mapping) and value:
                yield from _leaves(value, path)
            else:
                yield path, value
    else:
        yield prefix, payload


def _at(payload: Payload, path: str) -> Any:
    value: Any = payload
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _describe(value: Any) -> str:
    """A value of a field that is not carried, shown as a reader would want it."""
    if isinstance(value, Mapping):
        if "value" in value and "name" in value:
            # A call-to-test parameter: its value is what is lost, not only its name.
            return f"{value['name']}={value['value']}"
        for name in ("url", "target", "accountId", "name", "testCaseKey"):
            if value.get(name):
                shown = str(value[name])
                if value.get("description"):
                    shown += f" ({value['description']})"
                return shown
        if value.get("id") is not None:
            return f"id {value['id']}"
        return json.dumps(value, ensure_ascii=False, default=str)
    return "" if value is None else str(value)


def _id_or_zero(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _same_detail(detail: Detail, held: str) -> bool:
    """A value of the details block as Zephyr gave it against the text qTest holds under its label."""
    if detail.instant:
        try:
            return instant(detail.value) == instant(held.strip())
        except ValueError:
            return False
    return same_value(detail.value, held)


def _custom_value(value: Any, seeds: Any) -> Any:
    """A Zephyr custom-field value as qTest should hold it: a user's account through user_map."""
    if isinstance(value, str) and value in seeds.users:
        return seeds.users[value]
    return value


def _label_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip().lower()


def _qtest_type(object_type: str) -> str:
    return "test cases" if object_type in (TEST_CASE_WORDS, TEST_STEP_WORDS) else "test runs"


def _not_sent(error: str) -> bool:
    """A failure the run recorded without asking qTest: an object it needs has no qTest id (a KeyError of
    the mapping), as opposed to qTest's own answer (``POST ... -> 400: ...``)."""
    return error.startswith("KeyError:")


def status_map_remedy(status: str, alternative: str = "") -> str:
    """The remedy of an execution status no row of status_map.csv covers."""
    return f"add a row TEST_EXECUTION,{status},<qTest status> to {SEEDS}/status_map.csv{alternative}, then re-run"


def _remedy_for_refusal(error: str) -> str:
    return f"change what qTest refused (see the detail), then {RERUN}" if error else RERUN


def _step_words(payload: Payload) -> str:
    inline = payload.get("inline")
    if isinstance(inline, Mapping):
        return reader_text(inline.get("description"))
    call = payload.get("testCase")
    return f"call to {call.get('testCaseKey')}" if isinstance(call, Mapping) else ""


_VERSION_LINK = re.compile(r"/testcases/([^/]+)/versions/([0-9]+)")


def _case_version_of(payload: Payload) -> tuple[str | None, int | None]:
    """The case and version number an execution ran against, from its ``testCase.self`` link."""
    match = _VERSION_LINK.search(str((payload.get("testCase") or {}).get("self") or ""))
    return (match.group(1), int(match.group(2))) if match else (None, None)


def _case_key_of(payload: Payload) -> str | None:
    """The case key in an execution's testCase link (``.../testcases/<key>/versions/<n>``)."""
    link = str((payload.get("testCase") or {}).get("self") or "")
    match = re.search(r"/testcases/([^/]+)", link)
    return match.group(1) if match else None


def _tree_parents(found: Mapping[int, Mapping[str, Any]], children_key: str) -> dict[int, int | None]:
    parents: dict[int, int | None] = {int(qtest_id): None for qtest_id in found}
    for qtest_id, item in found.items():
        for child in item.get(children_key) or []:
            if child.get("id") is not None:
                parents[int(child["id"])] = int(qtest_id)
    return parents
