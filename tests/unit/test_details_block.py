from pathlib import Path

from zephyr_qtest.lib.details_block import HEADER, details_of

MACRO = Path(__file__).parents[2] / "dbt_project" / "macros" / "details_block.sql"


def test_values_are_read_back_as_written_and_repeated_labels_keep_every_value():
    description = (
        "<p>The cycle's own text</p><p><b>Zephyr details</b><br>Status: Done"
        "<br>Web link: https://x?a=1&amp;b=2 (Ticket in &lt;b&gt;Jira&lt;/b&gt;)<br>Web link: https://y</p>"
    )
    assert details_of(description) == {
        "Status": ["Done"],
        "Web link": ["https://x?a=1&b=2 (Ticket in <b>Jira</b>)", "https://y"],
    }


def test_a_description_without_the_block_has_no_details():
    assert details_of("<p>Status: Done</p>") == {}
    assert details_of(None) == {}


def test_the_macro_writes_the_header_the_reader_looks_for():
    assert f"{{% macro details_header() -%}}{HEADER}{{%- endmacro %}}" in MACRO.read_text()
