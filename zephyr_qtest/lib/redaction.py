"""Keep secrets out of logs, metadata, exception messages and the database.

Every component that holds a secret (an API token, a password) registers it here once; `redact` then
replaces each registered value with ``***`` in any text, and `RedactingFilter` does the same for log
records. The registry is process-wide on purpose: a token must stay hidden whichever library ends up
logging it, and libraries such as httpx log through their own loggers.

``Authorization`` header values are also masked by pattern, so a header that was never registered
(an OAuth access token fetched at run time before it was registered, say) does not leak either.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import quote

MASK = "***"

# Values shorter than this would turn ordinary words into "***" all over the logs; a real token is longer.
_MIN_SECRET_LENGTH = 4

# `Authorization: Bearer x`, `'authorization': 'bearer x'`, `(b'Authorization', b'Basic x')`: mask the value.
_AUTH_HEADER = re.compile(
    r"""(?P<name>\b(?:proxy-)?authorization\b['"]?\s*[:=,]\s*b?['"]?)(?P<value>[^'"\r\n,)}\]]+)""",
    re.IGNORECASE,
)

_lock = threading.Lock()
_secrets: set[str] = set()
# Longest first, so a secret that contains another one is masked whole.
_ordered: tuple[str, ...] = ()


def register_secret(value: str | None) -> None:
    """Remember `value` (and its URL-encoded form) as a secret to mask everywhere from now on."""
    if not value or len(value) < _MIN_SECRET_LENGTH:
        return
    global _ordered
    with _lock:
        before = len(_secrets)
        _secrets.add(value)
        # A token can reach a log line inside a URL, where it appears percent-encoded.
        encoded = quote(value, safe="")
        if encoded != value:
            _secrets.add(encoded)
        if len(_secrets) != before:
            _ordered = tuple(sorted(_secrets, key=len, reverse=True))


def redact(text: object) -> str:
    """`text` as a string with every registered secret and every Authorization value replaced by ``***``."""
    result = text if isinstance(text, str) else str(text)
    for secret in _ordered:
        if secret in result:
            result = result.replace(secret, MASK)
    return _AUTH_HEADER.sub(lambda match: match.group("name") + MASK, result)


class RedactingFilter(logging.Filter):
    """A logging filter that rewrites each record's message (and traceback text) with secrets masked.

    The message is formatted once here (``msg % args``) and the arguments dropped, because a secret can
    arrive as an argument (``log.debug("headers %s", headers)``) and handlers format records later.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record; mask what there is
            message = f"{record.msg} {record.args}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = RedactingFilter()
DEFAULT_LOGGERS = ("", "httpx", "httpcore", "zephyr_qtest")


def install_redaction(logger_names: Iterable[str] = DEFAULT_LOGGERS) -> RedactingFilter:
    """Attach the redacting filter to the named loggers, their existing children and their handlers.

    A filter on a logger only sees records logged on that very logger, not those propagated from its
    children (``httpcore.http11`` → ``httpcore``), so the filter goes on every existing descendant too,
    and on each handler of the named loggers (a handler filter sees every record it is asked to emit).
    ``""`` is the root logger. Safe to call more than once.
    """
    names = tuple(logger_names)
    targets: list[logging.Logger] = []
    for name in names:
        targets.append(logging.getLogger(name))
        prefix = f"{name}." if name else ""
        for child_name, child in list(logging.root.manager.loggerDict.items()):
            if isinstance(child, logging.Logger) and child_name.startswith(prefix):
                targets.append(child)
    for logger in targets:
        _add_filter(logger)
        for handler in logger.handlers:
            _add_filter(handler)
    return _FILTER


def _add_filter(filterer: logging.Filterer) -> None:
    if _FILTER not in filterer.filters:
        filterer.addFilter(_FILTER)
