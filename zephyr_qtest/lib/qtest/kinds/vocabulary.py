"""One spelling per concept: each qTest object type named once, in every form the code needs.

An object type is spelled four ways in this project: the qTest API path segment (``test-cases``), the
``qtest_mapping`` mart (``qtest_test_cases``), the id-map type (``test_case``) and the publishing stage,
which is the asset's name (``test_cases``); people read its display name ("test case"). Code takes the
spelling it needs from here instead of writing the literal.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ObjectType:
    """One qTest object type in all its spellings."""

    # The id-map type (``migration.id_map.object_type``), and the reconciliation's object type.
    name: str
    # The qTest API path segment (``projects/{id}/<segment>``; also blob-handle and field object types).
    api_segment: str
    # The ``qtest_mapping`` mart its rows come from (None: made by another kind's call, or not a mart's).
    mart: str | None
    # The publishing stage (the asset ``qtest/<stage>``) that creates it.
    stage: str | None
    display_name: str
    # qTest's name for it as the container of others (the ``parentType`` parameter), where it is one.
    parent_type: str | None = None


PROJECT = ObjectType("project", "projects", None, None, "project")
MODULE = ObjectType("module", "modules", "qtest_modules", "modules", "module")
TEST_CASE = ObjectType("test_case", "test-cases", "qtest_test_cases", "test_cases", "test case")
# Older versions of a test case, replayed as qTest versions of it (oldest first) before its current one.
TEST_CASE_VERSION = ObjectType(
    "test_case_version", "test-case-versions", "qtest_test_case_versions", "test_cases", "test case version"
)
# Test steps are created by their test case's call.
TEST_STEP = ObjectType("test_step", "test-steps", "qtest_test_steps", "test_cases", "test step")
# Releases (Zephyr test plans when plans_as is release) are published within the test-cycle stage.
RELEASE = ObjectType("release", "releases", "qtest_test_cycles", "test_cycles", "release", "release")
TEST_CYCLE = ObjectType(
    "test_cycle", "test-cycles", "qtest_test_cycles", "test_cycles", "test cycle", "test-cycle"
)
TEST_RUN = ObjectType("test_run", "test-runs", "qtest_test_runs", "test_runs", "test run")
TEST_LOG = ObjectType("test_log", "test-logs", "qtest_test_logs", "test_logs", "test log")
# Step logs are created by their test log's call.
TEST_STEP_LOG = ObjectType("test_step_log", "test-step-logs", "qtest_test_step_logs", "test_logs", "step log")
ATTACHMENT = ObjectType("attachment", "attachments", "qtest_attachments", "attachments", "attachment")
# A picture of a rich text (Zephyr's CDN or a data: URI), uploaded as an attachment of the object holding the
# text by that object's own stage (``inline_image.py``); one id-map row per (object, picture address).
INLINE_IMAGE = ObjectType("inline_image", "attachments", None, None, "inline image")
# Jira issues that Zephyr cases and executions link to, as requirements; their links to qTest cases and runs
# are made by the same stage (one id-map row per link, read back through linked-artifacts).
REQUIREMENT = ObjectType("requirement", "requirements", "qtest_requirements", "requirements", "requirement")
REQUIREMENT_LINK = ObjectType(
    "requirement_link", "linked-artifacts", "qtest_requirement_links", "requirements", "requirement link"
)

OBJECT_TYPES: tuple[ObjectType, ...] = (
    PROJECT,
    MODULE,
    TEST_CASE,
    TEST_CASE_VERSION,
    TEST_STEP,
    RELEASE,
    TEST_CYCLE,
    TEST_RUN,
    TEST_LOG,
    TEST_STEP_LOG,
    ATTACHMENT,
    REQUIREMENT,
    REQUIREMENT_LINK,
)
# The parentType of an object at the top of its tree.
ROOT_PARENT_TYPE = "root"
BY_NAME = {object_type.name: object_type for object_type in OBJECT_TYPES}
BY_API_SEGMENT = {object_type.api_segment: object_type for object_type in OBJECT_TYPES}
