"""Every Zephyr field's declared fate: carried (to which qTest field, by which rule) or not (and why).

One registry: the proof (``compare.py``) takes the reason and remedy of a value that is not carried from
here, the data dictionary renders it per raw table, and a test holds it against the payload keys the
staging models declare (``payload_key_columns`` and ``dropped_payload_keys``): a key the API sends with no
fate here fails the test, so a new field cannot be dropped without a word.

Paths are the staging models' payload paths (object keys joined with ``.``, ``[]`` for an array's
elements, ``*`` for any key of a free-form map); a fate covers its path and everything below it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Fate(StrEnum):
    # Compared with qTest value by value; what is not there is a ledger line.
    CARRIED = "carried"
    # Finds or places the object (its key, its owner, its folder): checked through the object's pairing.
    IDENTITY = "identity"
    # Not carried: every non-empty value is a ledger line with the fate's reason and remedy.
    NOT_CARRIED = "not carried"
    # An API link or a value only other fields need (a self URL, an id whose name is carried): no value of
    # its own to lose.
    STRUCTURAL = "structural"


@dataclass(frozen=True)
class FieldFate:
    # The raw table (``zephyr_raw.<entity>``) and the payload path.
    entity: str
    path: str
    fate: Fate
    # Carried: the qTest field it lands in. Not carried: empty.
    to: str
    # Carried: the rule. Otherwise: why.
    rule: str
    # What the user can do about a value that is not carried (empty for carried fields: the ledger line
    # then names the remedy of its own reason).
    remedy: str = ""

    def covers(self, path: str) -> bool:
        return path == self.path or path.startswith(self.path + ".") or path.startswith(self.path + "[")


ACCEPT = "accept it in the acceptance file (ZEPHYR_QTEST_ACCEPTANCE)"
CREATED_BY_QTEST = "qTest sets it itself when the object is created; its API cannot set it"
SELF = "the API's link to the object itself"
# Where an issue link's type lands (lib/qtest/kinds/requirement.py).
LINKED_FROM = "'Linked from: <Zephyr key> (<type>)' in its Zephyr details block"
# What a Jira issue's requirement is named (lib/jira_issues.py, qtest_requirements), and how the site's Jira
# integration's requirements are found instead.
REQUIREMENT_NAMED = "'<KEY> <summary>' as Jira answers, else 'Jira issue <issueId>'"
NAMED_RULE = (
    "the key and summary are Jira's answer (zephyr_raw.jira_issues; without JIRA_* configured, or for an "
    "issue Jira does not return, the id's name), the issue id stays in the description's Zephyr details "
    "('Jira issue id'); an imported requirement (its external id or link names the issue id, "
    "or its external id is the key) is linked instead and keeps its own name and description: COVERAGE is "
    "the link itself, other types are not carried"
)
# Where the values qTest has no field for go: the "Zephyr details" block (lib/details_block.py).
CYCLE_DETAILS = "test cycle description, Zephyr details"
PLAN_DETAILS = "release (plans_as test_cycle: test cycle) description, Zephyr details"
CUSTOM_FIELD_TEXT = "the value as text (a list's items joined with ', ')"
VERSION_RULE = "as the current version's"


def _fates() -> tuple[FieldFate, ...]:
    C, ID, N, S = Fate.CARRIED, Fate.IDENTITY, Fate.NOT_CARRIED, Fate.STRUCTURAL
    f = FieldFate
    cases = "test_cases"
    steps = "test_steps"
    cycles = "test_cycles"
    plans = "test_plans"
    executions = "test_executions"
    results = "test_execution_steps"
    versions = "test_case_versions"
    return (
        # ---------------------------------------------------------------- test cases -> qTest test cases
        f(cases, "id", S, "", "Zephyr's internal id; the key identifies the case"),
        f(cases, "key", ID, "test case property 'Zephyr Key'", "the key, as written (custom_field_map)"),
        f(cases, "name", C, "test case name", "as written; an empty name becomes the key"),
        f(cases, "objective", C, "test case description", "as written (HTML kept)"),
        f(cases, "precondition", C, "test case precondition", "as written (HTML kept)"),
        f(cases, "folder", ID, "test case module", "the module made of the test-case folder"),
        f(
            cases,
            "priority",
            C,
            "test case property 'Priority'",
            "the priority's name through priority_map; a name no row maps stays itself, added to the field's "
            "allowed values (never qTest's default)",
        ),
        f(
            cases,
            "status",
            C,
            "test case property 'Status'",
            "the status's name through status_map; a name no row maps stays itself, added to the field's "
            "allowed values",
        ),
        f(cases, "owner", C, "test case property 'Assigned To'", "the account through user_map"),
        f(cases, "labels", C, "test case property 'Labels'", "each label, one allowed value each"),
        f(cases, "component", C, "test case property 'Component'", "the Jira component's id, as text"),
        f(cases, "estimatedTime", C, "test case property 'Estimated Time (ms)'", "milliseconds, a number"),
        f(
            cases,
            "customFields",
            C,
            "test case property of the same label",
            "custom_field_map may rename it; a field of the closest type (number, combo box true/false for "
            "a checkbox, multiple selection with each value allowed for lists, combo box for a single "
            "choice declared in custom_field_map's zephyr_type, text otherwise), created with its values "
            "when missing",
        ),
        f(
            cases,
            "links.issues",
            C,
            f"requirement {REQUIREMENT_NAMED} (or the one the site's Jira integration imported) linked to the "
            "test case (also the property 'Jira Issues')",
            f"one requirement per issue; the link type in its description, {LINKED_FROM}; {NAMED_RULE}",
        ),
        f(
            cases,
            "links.webLinks",
            C,
            "test case property 'Web Links'",
            "one line per link: 'url (description) [TYPE]', the description and type when Zephyr has them",
        ),
        f(cases, "links.self", S, "", SELF),
        f(cases, "testScript", S, "", "a link to the steps, which test_steps and test_scripts hold"),
        f(cases, "project", S, "", "the project, which the whole run is about"),
        f(
            cases,
            "createdOn",
            C,
            "test case property 'Zephyr Created On'",
            "the same instant, in a date-time field (qTest sets its own created date)",
        ),
        # ---------------------------------------------------------------- older versions of the cases
        # Replayed as qTest versions of the case, oldest first (kinds/test_case_version.py); compared with
        # the version qTest lists for each (GET test-cases/{id}/versions).
        f(versions, "id", S, "", "Zephyr's id of the version; the case key and number identify it"),
        f(
            versions,
            "key",
            ID,
            "test case version property 'Zephyr Key'",
            "the case's key (custom_field_map)",
        ),
        f(versions, "name", C, "test case version name", "as written; an empty name becomes the key"),
        f(versions, "objective", C, "test case version description", "as written (HTML kept)"),
        f(versions, "precondition", C, "test case version precondition", "as written (HTML kept)"),
        f(
            versions,
            "steps",
            N,
            "",
            "Zephyr's v2 API gives no steps of an older version (its testScript link names the case's "
            "current steps): the qTest version holds no steps rather than steps it may not have had; one "
            "line per older version",
            ACCEPT,
        ),
        # The other values of an older version: its qTest version's properties, by the current version's
        # rules (the marts share the test_case_properties macro); a value a later version drops is cleared.
        *(
            f(versions, path, C, f"test case version property '{label}'", f"{VERSION_RULE}: {rule}")
            for path, label, rule in (
                ("priority", "Priority", "the name through priority_map"),
                ("status", "Status", "the name through status_map"),
                ("owner", "Assigned To", "the account through user_map"),
                ("labels", "Labels", "each label, one allowed value each"),
                ("component", "Component", "the Jira component's id, as text"),
                ("estimatedTime", "Estimated Time (ms)", "milliseconds, a number"),
                ("customFields", "<the field's label>", "a field of the closest type, created when missing"),
                ("links.issues", "Jira Issues", "the issues' URLs (else ids), in order"),
                ("links.webLinks", "Web Links", "one line per link: 'url (description) [TYPE]'"),
                ("createdOn", "Zephyr Created On", "the same instant, in a date-time field"),
            )
        ),
        f(versions, "folder", S, "", "qTest keeps a module per case, not per version: the case's module"),
        f(versions, "links.self", S, "", SELF),
        f(versions, "testScript", S, "", "a link to the case's current steps (see 'steps')"),
        f(versions, "project", S, "", "the project, which the whole run is about"),
        # ---------------------------------------------------------------- steps -> qTest test steps
        f(steps, "id", S, "", "Zephyr's internal id; the step's position identifies it"),
        f(steps, "inline.description", C, "test step description", "as written, by position"),
        f(steps, "inline.testData", C, "test step description", "after the description: 'Test data: ...'"),
        f(steps, "inline.expectedResult", C, "test step expected result", "as written"),
        f(
            steps,
            "inline.customFields",
            C,
            "test step description ('Zephyr details' block)",
            "qTest test steps have no fields: 'name: value' per field, a list's items joined",
        ),
        f(
            steps,
            "inline.reflectRef",
            N,
            "",
            "Zephyr's reference to an AI suggestion; qTest has none",
            ACCEPT,
        ),
        f(
            steps,
            "testCase.testCaseKey",
            C,
            "test step called_test_case_id",
            "the called case, linked (one call of a call cycle stays unlinked, named in the step's text)",
        ),
        f(
            steps,
            "testCase.parameters",
            C,
            "calling test step description ('Zephyr details' block)",
            "qTest's call-to-test steps take no parameters: 'Parameter <name>: <value>' per parameter",
        ),
        f(steps, "testCase.self", S, "", "a link to the called case"),
        # ---------------------------------------------------------------- scripts -> one qTest step
        f("test_scripts", "id", S, "", "Zephyr's internal id"),
        f("test_scripts", "text", C, "the case's single test step description", "as written"),
        f("test_scripts", "type", S, "", "plain text or BDD: both become one step"),
        # ---------------------------------------------------------------- cycles -> qTest test cycles (which
        # take no properties: the values qTest has no field for are in the description's details block)
        f(cycles, "id", S, "", "Zephyr's internal id; the key identifies the cycle"),
        f(cycles, "key", ID, "test cycle description", "'Zephyr test cycle <key>' in the description"),
        f(cycles, "name", C, "test cycle name", "as written; an empty name becomes the key"),
        f(cycles, "description", C, "test cycle description", "as written, before the Zephyr key"),
        f(
            cycles,
            "folder",
            ID,
            "test cycle parent (under a release: Zephyr details 'Folder')",
            "the cycle made of the test-cycle folder; a cycle under its plan's release names the folder's path",
        ),
        f(
            cycles,
            "plannedStartDate",
            C,
            f"{CYCLE_DETAILS} 'Planned start'",
            "the same instant, ISO 8601 in UTC",
        ),
        f(cycles, "plannedEndDate", C, f"{CYCLE_DETAILS} 'Planned end'", "the same instant, ISO 8601 in UTC"),
        f(cycles, "status", C, f"{CYCLE_DETAILS} 'Status'", "the status's name"),
        f(cycles, "owner", C, f"{CYCLE_DETAILS} 'Owner'", "the Atlassian account id"),
        f(cycles, "customFields", C, f"{CYCLE_DETAILS} 'Custom field <name>'", CUSTOM_FIELD_TEXT),
        f(
            cycles,
            "jiraProjectVersion",
            C,
            f"{CYCLE_DETAILS} 'Jira version'",
            "the version's id (Zephyr gives only the id)",
        ),
        f(cycles, "links.issues", C, f"{CYCLE_DETAILS} 'Jira issue'", "each issue's URL, a line each"),
        f(
            cycles,
            "links.webLinks",
            C,
            f"{CYCLE_DETAILS} 'Web link'",
            "each link's URL (description), a line each",
        ),
        f(
            cycles,
            "links.testPlans",
            ID,
            "test cycle parent: the release of its first plan (plans_as release); Zephyr details 'Also in test "
            "plans'",
            "under the release of its first plan by key, the others named a line each; with plans_as "
            "test_cycle the plan is a cycle of its own",
        ),
        f(cycles, "links.self", S, "", SELF),
        f(cycles, "project", S, "", "the project, which the whole run is about"),
        # ---------------------------------------------------------------- plans -> qTest releases / test cycles
        f(plans, "id", S, "", "Zephyr's internal id; the key identifies the plan"),
        f(
            plans,
            "key",
            ID,
            "release (or test cycle) description",
            "'Zephyr test plan <key>' in the description",
        ),
        f(plans, "name", C, "release (or test cycle) name", "as written; an empty name becomes the key"),
        f(plans, "objective", C, "release (or test cycle) description", "as written, before the Zephyr key"),
        f(
            plans,
            "folder",
            C,
            f"{PLAN_DETAILS} 'Folder'",
            "the folder's path from its root ('Parent / Child'): qTest has no folders of releases",
        ),
        f(plans, "status", C, f"{PLAN_DETAILS} 'Status'", "the status's name"),
        f(plans, "owner", C, f"{PLAN_DETAILS} 'Owner'", "the Atlassian account id"),
        f(plans, "labels", C, f"{PLAN_DETAILS} 'Label'", "each label, a line each"),
        f(plans, "customFields", C, f"{PLAN_DETAILS} 'Custom field <name>'", CUSTOM_FIELD_TEXT),
        f(plans, "links.issues", C, f"{PLAN_DETAILS} 'Jira issue'", "each issue's URL, a line each"),
        f(
            plans,
            "links.webLinks",
            C,
            f"{PLAN_DETAILS} 'Web link'",
            "each link's URL (description), a line each",
        ),
        f(
            plans,
            "links.testCycles",
            S,
            "",
            "the cycles' own links.testPlans place them; the release's dates span their planned dates",
        ),
        f(plans, "links.self", S, "", SELF),
        f(plans, "project", S, "", "the project, which the whole run is about"),
        # ---------------------------------------------------------------- executions -> qTest runs and logs
        f(executions, "id", S, "", "Zephyr's internal id; the key identifies the execution"),
        f(executions, "key", ID, "test log property 'Zephyr Key'", "the key, as written"),
        f(
            executions,
            "testCase",
            ID,
            "test run's test case; the test log's test_case_version_id",
            "the run of (cycle, case) holds the log, on the qTest version the Zephyr version it ran against "
            "became (an older one: its results in the log's note, as qTest holds it without steps)",
        ),
        f(
            executions,
            "testCycle",
            ID,
            "test run's cycle",
            "the run sits in the cycle (ad hoc: 'Ad-hoc executions')",
        ),
        f(executions, "testExecutionStatus", C, "test log status", "the status's name through status_map"),
        f(executions, "actualEndDate", C, "test log exe_end_date", "the same instant"),
        f(executions, "executionTime", C, "test log exe_start_date", "exe_end_date minus the time taken"),
        f(
            executions,
            "comment",
            C,
            "test log note (not run yet: the run's property 'Zephyr Comment')",
            "as written (a qTest run has no note: a text-area field of test runs, created when missing)",
        ),
        f(
            executions,
            "environment",
            C,
            "test log property 'Environment' (not run yet: the run's)",
            "the environment's name, added to the field's allowed values when missing",
        ),
        f(executions, "executedById", C, "test log property 'Executed By'", "the account through user_map"),
        f(
            executions,
            "assignedToId",
            C,
            "test log property 'Assigned To' (not run yet: the run's 'Assigned To')",
            "the account through user_map",
        ),
        f(
            executions,
            "customFields",
            C,
            "test log property of the same label (not run yet: the run's)",
            "custom_field_map may rename it; a field of the closest type, created when missing",
        ),
        f(executions, "automated", S, "", "decides how the log is made (qTest's automation endpoint)"),
        f(
            executions,
            "estimatedTime",
            C,
            "test log property 'Estimated Time (ms)' (not run yet: the run's)",
            "milliseconds, a number (qTest logs have no estimated time: a field of test runs)",
        ),
        f(
            executions,
            "jiraProjectVersion",
            C,
            "test log property 'Jira Version Id' (not run yet: the run's)",
            "the version's id, a number: Zephyr gives no name",
        ),
        f(
            executions,
            "links.issues",
            C,
            f"requirement {REQUIREMENT_NAMED} (or the one the site's Jira integration imported) linked to the "
            "execution's test run",
            f"one requirement per issue, linked to the run of (cycle, case); the link type in its description, "
            f"{LINKED_FROM}; {NAMED_RULE}",
        ),
        f(executions, "links.self", S, "", SELF),
        f(executions, "project", S, "", "the project, which the whole run is about"),
        # ---------------------------------------------------------------- step results -> qTest step logs
        f(results, "id", S, "", "Zephyr's internal id; the position identifies the result"),
        # A result is placed by its position within its data row in the case's flattened steps: on a
        # step of the case or of a case it calls (called_test_case_id, parent_test_step_id), or, where
        # qTest has no step for it, as a "Step result <position>" line of the log note's details block.
        f(
            results,
            "inline.status",
            C,
            "test step log status (or the log note's 'Step result <position>')",
            "the status's name through status_map",
        ),
        f(
            results,
            "inline.actualResult",
            C,
            "test step log actual_result (or the log note's 'Step result <position>')",
            "as written",
        ),
        f(results, "inline.description", S, "", "a copy of the case step's text, which the step log shows"),
        f(results, "inline.expectedResult", S, "", "a copy of the case step's expected result"),
        f(
            results,
            "inline.testData",
            C,
            "the log note's 'Data row <n>' (a data row's values)",
            "of a data-driven execution: each row's test data as run; otherwise a copy of the case step's",
        ),
        f(
            results,
            "inline.testDataRowNumber",
            C,
            "the log note's 'Data row <n>'",
            "every row's results are step logs, the case's steps once per row; the note names each row "
            "and the positions of its results",
        ),
        f(
            results,
            "inline.reflectRef",
            N,
            "",
            "Zephyr's reference to an AI suggestion; qTest has none",
            ACCEPT,
        ),
        # ---------------------------------------------------------------- folders -> modules, cycles
        f(
            "folders",
            "id",
            ID,
            "module / test cycle (test-plan folders: the plans' Zephyr details 'Folder')",
            "test-case folders become modules, test-cycle folders cycles; qTest has no folders of releases, "
            "so a plan names the path of its folder",
        ),
        f("folders", "name", C, "module / test cycle name", "as written"),
        f("folders", "parentId", ID, "module / test cycle parent", "under the parent folder's"),
        f("folders", "folderType", S, "", "decides what the folder becomes"),
        f(
            "folders",
            "index",
            C,
            "module / test cycle order, relative to its siblings",
            "siblings are created one after the other in index order, and qTest numbers order by "
            "creation; the proof compares each folder's rank among its siblings on both sides (a folder of "
            "test plans has no qTest object, so no position)",
        ),
        f("folders", "project", S, "", "the project, which the whole run is about"),
        # ---------------------------------------------------------------- attachments
        f("attachments", "id", S, "", "Zephyr's internal id; the owner's path and the id identify it"),
        f("attachments", "name", C, "attachment name, with the same bytes", "name, size and SHA-256"),
        # ---------------------------------------------------------------- vocabularies: carried through the
        # objects that use them (a priority's name on each case); their own attributes have no qTest place.
        *(
            f(entity, path, S, "", "an attribute of the value list, not of a test object")
            for entity in ("priorities", "statuses", "environments")
            for path in (
                "id",
                "name",
                "description",
                "index",
                "color",
                "default",
                "archived",
                "project",
                "statusType",
            )
        ),
        # ---------------------------------------------------------------- Jira's answer for a linked issue
        f(
            "jira_issues",
            "id",
            ID,
            "requirement description, Zephyr details 'Jira issue id'",
            "the issue id Zephyr's links name (issueId), which pairs Jira's answer with them",
        ),
        f("jira_issues", "key", C, "requirement name, before the summary", "'<KEY> <summary>'"),
        f(
            "jira_issues",
            "fields.summary",
            C,
            "requirement name, after the key",
            "'<KEY> <summary>', trimmed, the name cut to qTest's 500 characters",
        ),
        f("jira_issues", "self", S, "", "the API's link to the issue"),
        f("jira_issues", "expand", S, "", "what Jira could expand: no value of the issue's"),
        f("jira_issues", "fields", S, "", "the fields asked for (summary only)"),
        *(
            f("projects", path, S, "", "the project, which the whole run is about")
            for path in ("id", "key", "jiraProjectId", "enabled")
        ),
    )


FATES: tuple[FieldFate, ...] = _fates()


def fate_of(entity: str, path: str) -> FieldFate | None:
    """The fate that covers `path` of `entity` (the longest declared path), None when there is none."""
    found = [fate for fate in FATES if fate.entity == entity and fate.covers(path)]
    return max(found, key=lambda fate: len(fate.path), default=None)


def fates_of(entity: str) -> Iterable[FieldFate]:
    return (fate for fate in FATES if fate.entity == entity)
