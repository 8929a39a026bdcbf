"""Inline images: pictures embedded in Zephyr's rich text, found and counted object by object.

Zephyr Scale Cloud keeps them on SmartBear's CDN (``https://cloudfront.tm4j.smartbear.com/tenant/<tenant>/
project/<id>/embedded-...png``) behind a token that only the Zephyr app in a signed-in browser holds; the API
token cannot fetch them (REAL_SHAPES Zephyr 5). The HTML arrives in qTest as written, so the text compares
equal while its pictures still point at SmartBear and break once the Jira site is gone. Each is therefore a
ledger line of its own, naming the object, the field and the picture's address: the text check alone would
call it carried.
"""

from __future__ import annotations

import html
import re
from typing import Any

from zephyr_qtest.lib.proof.ledger import Reason

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
# <img ... src="..."> in HTML; Zephyr's editor writes HTML, the quotes either kind.
_IMAGE = re.compile(r"""<img\b[^>]*?\bsrc\s*=\s*(["'])(?P<src>.*?)\1""", re.IGNORECASE | re.DOTALL)
DETAIL = (
    "an inline image on SmartBear's CDN: the Zephyr API token cannot fetch it, so qTest's copy of the text "
    "still points at SmartBear (it breaks when the Jira site's access ends)"
)
REMEDY = (
    "save the picture from the Zephyr page and attach it to the qTest object by hand, or accept it in the "
    "acceptance file (ZEPHYR_QTEST_ACCEPTANCE)"
)
REASON = Reason.NOT_CARRIED


def image_sources(text: Any) -> list[str]:
    """The addresses of the pictures embedded in one rich-text value, in order."""
    if not isinstance(text, str) or "<img" not in text.lower():
        return []
    return [html.unescape(match.group("src")).strip() for match in _IMAGE.finditer(text)]
