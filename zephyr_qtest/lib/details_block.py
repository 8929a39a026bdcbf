"""The "Zephyr details" block: values a qTest object has no field for, at the end of its description.

The dbt macro ``details_block`` (dbt_project/macros/details_block.sql) writes it as
``<p><b>Zephyr details</b><br>Label: value<br>...</p>`` with each value HTML-escaped; `details_of` reads
it back from what qTest holds, so the proof can check every value where it was put, as the user reads it.
"""

from __future__ import annotations

import html
import re

HEADER = "Zephyr details"
_BLOCK = re.compile(
    r"<p>\s*<b>\s*" + re.escape(HEADER) + r"\s*</b>(?P<lines>.*?)</p>", re.IGNORECASE | re.DOTALL
)
_BREAK = re.compile(r"<\s*br\s*/?\s*>", re.IGNORECASE)


def details_of(description: str | None) -> dict[str, list[str]]:
    """Label -> the values written under it (a label can repeat: several web links, several issues), from
    the last details block of `description`; {} when there is none."""
    blocks = _BLOCK.findall(description or "")
    if not blocks:
        return {}
    details: dict[str, list[str]] = {}
    for line in _BREAK.split(blocks[-1]):
        label, separator, value = line.partition(": ")
        if separator:
            details.setdefault(html.unescape(label).strip(), []).append(html.unescape(value))
    return details


def with_details(description: str | None, pairs: list[tuple[str, str]]) -> str:
    """`description` with `pairs` (label, value) added to its details block, as the dbt macro writes it:
    into the block it ends with, or in a new block at its end. For values only the loader knows where they
    go (a step result qTest has no step log for); `details_of` reads them back with the others."""
    text = description or ""
    if not pairs:
        return text
    lines = "".join(
        f"<br>{html.escape(label, quote=False)}: {html.escape(value, quote=False)}" for label, value in pairs
    )
    blocks = list(_BLOCK.finditer(text))
    if blocks and not text[blocks[-1].end() :].strip():
        end = blocks[-1].end() - len("</p>")
        return text[:end] + lines + text[end:]
    return f"{text}<p><b>{HEADER}</b>{lines}</p>"
