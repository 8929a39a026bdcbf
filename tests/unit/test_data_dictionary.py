"""docs/data-dictionary.md is generated from the dbt project's docs and must match them."""

from __future__ import annotations

from zephyr_qtest.lib.data_dictionary import (
    DOCUMENT,
    README,
    readme_with_mapping_table,
    render_from_project,
    render_mapping_table,
)


def test_the_data_dictionary_is_up_to_date() -> None:
    expected = render_from_project()
    assert DOCUMENT.is_file(), f"{DOCUMENT} is missing: run `python -m zephyr_qtest.lib.data_dictionary`"
    assert DOCUMENT.read_text() == expected, (
        "docs/data-dictionary.md is out of date: run `python -m zephyr_qtest.lib.data_dictionary`"
    )


def test_every_canonical_table_and_payload_section_is_documented() -> None:
    text = DOCUMENT.read_text()
    for table in ("project", "folder", "test_case", "test_step", "test_cycle", "test_execution",
                  "custom_field", "attachment", "test_execution_step", "test_script", "test_plan",
                  "label", "issue_link", "web_link", "test_step_parameter", "environment", "status",
                  "priority", "user_ref"):  # fmt: skip
        assert f"### `canonical.{table}`" in text, table
    assert "Payload keys of `zephyr_raw.test_executions`" in text
    assert "| `testCase.self` |" in text


def test_the_readmes_mapping_table_is_rendered_from_the_fates() -> None:
    """The README's table says what fates.py says: a field whose fate changes changes the README too."""
    readme = README.read_text()
    assert readme_with_mapping_table(readme) == readme, (
        "README.md's mapping table is out of date: run `python -m zephyr_qtest.lib.data_dictionary`"
    )
    table = render_mapping_table()
    assert "| test case `createdOn` |" in table and "| test execution `comment` |" in table
    # The API's own links and ids have no value to lose, so they are not listed.
    assert "`links.self`" not in table
