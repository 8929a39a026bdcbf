"""The query language of ``POST /api/v3/projects/{projectId}/search``: the subset the sandbox understands.

The vendor documents the query as "the Query Summary text as in qTest web app", with a few rules (quote
multi-word criteria names with single quotes, spaces around operators, ``~`` contains, ``!~`` does not
contain, ``is 'not empty'``, ISO dates). The sandbox implements this grammar::

    query       := conjunction ( "or" conjunction )*
    conjunction := term ( "and" term )*
    term        := criterion operator value  |  criterion "is" ( 'empty' | 'not empty' )
    criterion   := 'quoted name' | "quoted name" | word+        (a field label, an attribute, or a field id)
    operator    := = | != | ~ | !~ | < | <= | > | >=
    value       := 'quoted' | "quoted" | word                  (inside quotes, \\' or '' is a quote)

``and`` binds tighter than ``or``; there are no parentheses. Matching (``evaluate``) is case-insensitive;
``=`` is whole-value equality, ``~`` substring. How a criterion maps to an object's values (labels, ids,
allowed values) is the store's business: it hands each object's values to ``evaluate`` as a lookup.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from zephyr_qtest.sandbox.common import parse_iso_datetime

OPERATORS: tuple[str, ...] = ("!=", "!~", "<=", ">=", "=", "~", "<", ">")
EMPTINESS = ("empty", "not empty")


class QueryError(ValueError):
    """The query cannot be parsed (the message says where)."""


@dataclass(frozen=True, slots=True)
class Term:
    """One criterion: ``field op value`` (``op`` is ``is`` for the emptiness tests)."""

    field: str
    op: str
    value: str


Query = list[list[Term]]  # a disjunction of conjunctions

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<quoted>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
      | (?P<op>!=|!~|<=|>=|=|~|<|>)
      | (?P<word>[^\s'"=~<>!]+|!)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # quoted | op | word
    text: str


def _unquote(text: str) -> str:
    quote = text[0]
    inner = text[1:-1]
    if quote == "'":
        inner = inner.replace("''", "'")
    return re.sub(r"\\(.)", r"\1", inner)


def _tokenize(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    text = query.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise QueryError(f"cannot read the query at character {position + 1}: {text[position:]!r}")
        position = match.end()
        if match.group("quoted") is not None:
            tokens.append(_Token("quoted", _unquote(match.group("quoted"))))
        elif match.group("op") is not None:
            tokens.append(_Token("op", match.group("op")))
        else:
            tokens.append(_Token("word", match.group("word")))
    return tokens


def parse_query(query: str | None) -> Query:
    """Parse ``query``; an empty or missing query matches everything (``[[]]``)."""
    if query is None or not query.strip():
        return [[]]
    tokens = _tokenize(query)
    disjunction: Query = [[]]
    index = 0
    while index < len(tokens):
        # criterion: one quoted token, or words up to the operator
        start = index
        if tokens[index].kind == "quoted":
            field = tokens[index].text
            index += 1
        else:
            words: list[str] = []
            while (
                index < len(tokens)
                and tokens[index].kind == "word"
                and not (words and tokens[index].text.lower() == "is")
            ):
                words.append(tokens[index].text)
                index += 1
            if not words:
                raise QueryError(f"expected a criterion name at token {start + 1} of the query")
            field = " ".join(words)
        if index >= len(tokens):
            raise QueryError(f"criterion '{field}' has no operator")
        token = tokens[index]
        if token.kind == "op":
            op = token.text
        elif token.kind == "word" and token.text.lower() == "is":
            op = "is"
        else:
            raise QueryError(f"expected an operator after '{field}', got {token.text!r}")
        index += 1
        if index >= len(tokens) or tokens[index].kind == "op":
            raise QueryError(f"criterion '{field}' {op} has no value")
        value = tokens[index].text
        index += 1
        if op == "is":
            # `is not empty` written without quotes arrives as two words.
            if tokens[index - 1].kind == "word" and value.lower() == "not" and index < len(tokens):
                value = f"not {tokens[index].text}"
                index += 1
            if value.lower() not in EMPTINESS:
                raise QueryError(
                    f"'{field}' is ... must be followed by 'empty' or 'not empty', got {value!r}"
                )
            value = value.lower()
        disjunction[-1].append(Term(field, op, value))
        if index < len(tokens):
            connector = tokens[index]
            if connector.kind != "word" or connector.text.lower() not in ("and", "or"):
                raise QueryError(
                    f"expected 'and' or 'or' after '{field} {op} {value}', got {connector.text!r}"
                )
            index += 1
            if index >= len(tokens):
                raise QueryError(f"the query ends after '{connector.text}'")
            if connector.text.lower() == "or":
                disjunction.append([])
    return disjunction


def _as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _ordered(left: str, op: str, right: str) -> bool:
    """``left op right`` for < <= > >=: as date-times, else numbers, else case-insensitive text."""
    a: object
    b: object
    da, db = parse_iso_datetime(left), parse_iso_datetime(right)
    if da is not None and db is not None:
        a, b = da, db
    else:
        na, nb = _as_number(left), _as_number(right)
        if na is not None and nb is not None:
            a, b = na, nb
        else:
            a, b = left.lower(), right.lower()
    if op == "<":
        return a < b  # type: ignore[operator]
    if op == "<=":
        return a <= b  # type: ignore[operator]
    if op == ">":
        return a > b  # type: ignore[operator]
    return a >= b  # type: ignore[operator]


def term_matches(values: Sequence[str], term: Term) -> bool:
    """Whether an object whose criterion has ``values`` (every spelling: label, id, ...) matches ``term``."""
    wanted = term.value.lower()
    present = [v for v in values if v != ""]
    if term.op == "is":
        return bool(present) if wanted == "not empty" else not present
    if term.op == "=":
        return any(v.lower() == wanted for v in present) or (wanted == "" and not present)
    if term.op == "!=":
        return not term_matches(values, Term(term.field, "=", term.value))
    if term.op == "~":
        return any(wanted in v.lower() for v in present)
    if term.op == "!~":
        return not any(wanted in v.lower() for v in present)
    return any(_ordered(v, term.op, term.value) for v in present)


def evaluate(query: Query, lookup: Callable[[str], Sequence[str]]) -> bool:
    """Whether the object whose criteria ``lookup`` answers matches ``query``."""
    return any(all(term_matches(lookup(term.field), term) for term in conjunction) for conjunction in query)
