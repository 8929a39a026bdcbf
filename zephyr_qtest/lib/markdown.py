"""Text from Zephyr (and from qTest) in the Markdown the tool writes: reports, asset metadata. Zephyr's
rich text is HTML written by anyone with edit rights; a viewer that renders Markdown renders the HTML
inside it too (an ``<img onerror=...>`` runs), so every value is shown as a reader of the source sees its
characters, never as markup."""

from __future__ import annotations

import html
import json
from typing import Any

CELL_CHARS = 200


def flat(value: Any, limit: int = CELL_CHARS) -> str:
    """One line of at most `limit` characters: strings as they are, everything else as JSON."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return " ".join(text.split())[:limit]


def cell(value: Any, limit: int = CELL_CHARS) -> str:
    """`value` as inert text in a Markdown table cell: HTML escaped, and the characters that end a cell
    or open a link or an image (which a viewer would fetch) escaped too."""
    text = html.escape(flat(value, limit), quote=False)
    for char in ("\\", "|", "[", "]", "`"):
        text = text.replace(char, "\\" + char)
    return text
