"""The project templates of the qTest sandbox: field settings, execution statuses, users.

Every project created on the sandbox gets the field settings of the site's template
(``GET .../settings/{objectType}/fields``) and the execution statuses (``GET .../test-runs/execution-statuses``).
Two templates: ``default``, what a new qTest site has (its system fields only: the fields a migration
invents, such as a Zephyr key, labels, Jira links or executed-by, do not exist until a client creates them,
REAL_SHAPES qTest 5), and ``rich``, the default plus those fields (``system=False`` below), for tests that
need them to exist beforehand. Their ids are *not* fixed here: the store
draws them from the site's id sequence when the project is created, so they differ per project and per
site (state directory), as they do on a real tenant, and a client that hard-codes ``601 = Passed`` or
``field 11 = Priority`` fails against the sandbox instead of in production.

Labels are what a client resolves fields by (API_NOTES Q-4: "resolved by field label"), so they are the
stable part of the template. ``data_type`` codes are the vendor's (Q-4): 1 text box, 2 text area, 3 combo
box, 4 date picker, 5 user list, 6 rich text editor, 7 number, 8 check box, 9 date time picker, 12 URL,
17 multiple selection combobox.
"""

from __future__ import annotations

from dataclasses import dataclass

from zephyr_qtest.sandbox.jira.directory import qtest_people

TEXT_BOX = 1
TEXT_AREA = 2
COMBO_BOX = 3
DATE_PICKER = 4
USER_LIST = 5
RICH_TEXT = 6
NUMBER = 7
CHECK_BOX = 8
DATE_TIME = 9
URL = 12
MULTI_SELECT = 17

DATA_TYPES: dict[int, str] = {
    TEXT_BOX: "Text box",
    TEXT_AREA: "Text area",
    COMBO_BOX: "Combo box",
    DATE_PICKER: "Date picker",
    USER_LIST: "User list",
    RICH_TEXT: "Rich text editor",
    NUMBER: "Number",
    CHECK_BOX: "Check box",
    DATE_TIME: "Date time picker",
    URL: "URL",
    MULTI_SELECT: "Multiple selection combobox",
}
# Types whose value is an allowed value's id (or several), and the ones that hold several values.
PICKLIST_TYPES: frozenset[int] = frozenset({COMBO_BOX, CHECK_BOX, MULTI_SELECT})
MULTIPLE_TYPES: frozenset[int] = frozenset({CHECK_BOX, MULTI_SELECT})

# Object types of the field settings endpoints (the swagger's enum), and those a custom field may be added to.
FIELD_OBJECT_TYPES: tuple[str, ...] = (
    "requirements",
    "test-cases",
    "defects",
    "test-runs",
    "test-suites",
    "releases",
    "builds",
    "test-steps",
)
CUSTOM_FIELD_OBJECT_TYPES: tuple[str, ...] = tuple(t for t in FIELD_OBJECT_TYPES if t != "test-steps")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of the template.

    ``attribute``: the field is shown as a top-level attribute of the object (``description``,
    ``precondition``), not among its ``properties``. ``values``: allowed value labels, in order.
    ``default``: the label (or text) an object gets when it is created without a value.
    ``statuses``: the allowed values are the project's execution statuses (same ids).
    """

    label: str
    data_type: int
    system: bool = True
    values: tuple[str, ...] = ()
    default: str | None = None
    required: bool = False
    attribute: str | None = None
    statuses: bool = False

    @property
    def multiple(self) -> bool:
        return self.data_type in MULTIPLE_TYPES


# Zephyr data lands in these custom fields (DESIGN §5: the Zephyr key on each object, labels, component,
# Jira links); a team's real tenant may name them differently, which is why clients resolve by label.
ZEPHYR_KEY = "Zephyr Key"
LABEL_VALUES: tuple[str, ...] = ("smoke", "regression", "ui", "api", "security")

# The rich template: every field below. The default template is its system fields only.
RICH_TEMPLATE: dict[str, tuple[FieldSpec, ...]] = {
    "test-cases": (
        FieldSpec("Description", RICH_TEXT, attribute="description"),
        FieldSpec("Precondition", RICH_TEXT, attribute="precondition"),
        FieldSpec("Priority", COMBO_BOX, values=("Low", "Medium", "High", "Urgent"), default="Medium"),
        FieldSpec("Status", COMBO_BOX, values=("New", "In Review", "Approved", "Obsolete"), default="New"),
        FieldSpec(
            "Type", COMBO_BOX, values=("Manual", "Automation", "Performance", "Scenario"), default="Manual"
        ),
        FieldSpec("Assigned To", USER_LIST),
        FieldSpec("Automation", COMBO_BOX, values=("Yes", "No"), default="No"),
        FieldSpec("Automation Content", TEXT_BOX),
        FieldSpec(ZEPHYR_KEY, TEXT_BOX, system=False),
        FieldSpec("Component", TEXT_BOX, system=False),
        FieldSpec("Labels", MULTI_SELECT, system=False, values=LABEL_VALUES),
        FieldSpec("Jira Issues", TEXT_AREA, system=False),
    ),
    "test-runs": (
        FieldSpec("Status", COMBO_BOX, statuses=True, default="Unexecuted"),
        FieldSpec("Priority", COMBO_BOX, values=("Low", "Medium", "High", "Urgent"), default="Medium"),
        FieldSpec("Assigned To", USER_LIST),
        FieldSpec("Environment", COMBO_BOX, values=("Development", "Staging", "Production")),
        FieldSpec("Planned Start Date", DATE_PICKER),
        FieldSpec("Planned End Date", DATE_PICKER),
        FieldSpec(ZEPHYR_KEY, TEXT_BOX, system=False),
        FieldSpec("Executed By", USER_LIST, system=False),
    ),
    "test-suites": (
        FieldSpec("Planned Start Date", DATE_PICKER),
        FieldSpec("Planned End Date", DATE_PICKER),
        FieldSpec(ZEPHYR_KEY, TEXT_BOX, system=False),
    ),
    "releases": (
        FieldSpec("Status", COMBO_BOX, values=("Planning", "Implementing", "Closed"), default="Planning"),
        FieldSpec(ZEPHYR_KEY, TEXT_BOX, system=False),
    ),
    # RequirementResource (swagger) has no description attribute: a requirement's description is its
    # 'Description' field (qTest's default requirement field; its label on a real site is unverified).
    "requirements": (FieldSpec("Description", RICH_TEXT),),
    "defects": (),
    "builds": (),
    "test-steps": (),
}

DEFAULT_TEMPLATE: dict[str, tuple[FieldSpec, ...]] = {
    object_type: tuple(spec for spec in specs if spec.system) for object_type, specs in RICH_TEMPLATE.items()
}
# Template name -> its field settings per object type; a site uses one for every project it creates.
TEMPLATES: dict[str, dict[str, tuple[FieldSpec, ...]]] = {"default": DEFAULT_TEMPLATE, "rich": RICH_TEMPLATE}
DEFAULT_TEMPLATE_NAME = "default"


@dataclass(frozen=True, slots=True)
class StatusSpec:
    """An execution status (the Status of test logs and test runs)."""

    name: str
    color: str
    is_default: bool = False


EXECUTION_STATUSES: tuple[StatusSpec, ...] = (
    StatusSpec("Passed", "#6cbd45"),
    StatusSpec("Failed", "#e8383d"),
    StatusSpec("Incomplete", "#f7b500"),
    StatusSpec("Blocked", "#8c5bd4"),
    StatusSpec("Unexecuted", "#b2b2b2", is_default=True),
)

# The project's Automation Settings: automation status strings (auto-test-logs) → execution status name.
# Matched case-insensitively; anything else is rejected.
AUTOMATION_STATUS_MAP: dict[str, str] = {
    "PASSED": "Passed",
    "PASS": "Passed",
    "FAILED": "Failed",
    "FAIL": "Failed",
    "INCOMPLETE": "Incomplete",
    "SKIPPED": "Incomplete",
    "BLOCKED": "Blocked",
    "UNEXECUTED": "Unexecuted",
}

# Site users (every one is a member of every project). Status: 1 active, 2 inactive. The API token the
# sandbox prints belongs to the first (a site and project admin).
USER_ACTIVE = 1
USER_INACTIVE = 2


@dataclass(frozen=True, slots=True)
class UserSpec:
    username: str
    first_name: str
    last_name: str
    active: bool = True
    admin: bool = False


USERS: tuple[UserSpec, ...] = (
    UserSpec("qtest.admin@sandbox.local", "Sandbox", "Admin", admin=True),
    UserSpec("alice.tester@sandbox.local", "Alice", "Tester"),
    UserSpec("bob.lead@sandbox.local", "Bob", "Lead"),
    UserSpec("carol.analyst@sandbox.local", "Carol", "Analyst"),
    UserSpec("dave.former@sandbox.local", "Dave", "Former", active=False),
    # The company's people who test in qTest (most of those the Jira sandbox knows, not all: a migration
    # must report the others). qTest user names are e-mail addresses here, as on sites that sign in with them.
    *(UserSpec(person.email, person.first_name, person.last_name) for person in qtest_people()),
)
DEFAULT_PASSWORD = "qtest-sandbox"

# Where test cases go when a create call names no module (the vendor's rule, quoted in API_NOTES Q-5).
CREATED_VIA_API_MODULE = "Created via API"
