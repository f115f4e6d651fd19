"""The OQL subset the simulator understands, compiled into a predicate and an ordering.

Grammar (keywords in any case)::

    query   := [expr] [ORDER BY field [ASC|DESC] {, field [ASC|DESC]}]
    expr    := term {OR term}
    term    := factor {AND factor}
    factor  := NOT factor | '(' expr ')' | field op literal | field [NOT] IN '[' literal {, literal} ']'
    op      := = | != | <> | < | <= | > | >= | LIKE | NOT LIKE
    literal := 'text' (a quote doubled inside) | number | true | false

``LIKE`` patterns use TWS wildcards: ``@`` or ``*`` for any run of characters, ``?`` for one.
What a field means (how to read it from an object, how to read a literal for it) is the
caller's: ``compile_oql`` only knows the grammar. Any mistake is an ``OqlError``, which the server
answers with 400 ``OQL_FILTER_SYNTAX_ERROR``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

Predicate = Callable[[Any], bool]


class OqlError(ValueError):
    """The filter does not parse, or names a field or value the server does not know."""


def upper(text: str) -> str:
    return text.strip().upper()


def instant(text: str) -> float:
    """An ISO-8601 literal as epoch seconds (``2026-11-21T02:00:00.000Z``)."""
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise OqlError(f"not an ISO-8601 instant: {text!r}") from None


def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise OqlError(f"not an integer: {text!r}") from None


def boolean(text: str) -> bool:
    if text.lower() not in {"true", "false"}:
        raise OqlError(f"not true or false: {text!r}")
    return text.lower() == "true"


@dataclass(frozen=True, slots=True, kw_only=True)
class Field:
    """How to read one field: ``get`` from an object (a tuple of values when ``many``), ``parse``
    a literal into the same domain, and ``text`` for LIKE when ``get`` is not already text."""

    get: Callable[[Any], Any]
    parse: Callable[[str], Any] = upper
    text: Callable[[Any], Any] | None = None
    many: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Query:
    keep: Predicate
    order: tuple[tuple[Callable[[Any], Any], bool], ...] = ()

    def sort(self, items: list[Any]) -> list[Any]:
        """Stable multi-key sort; missing values last whatever the direction."""
        for get, descending in reversed(self.order):
            present = [i for i in items if get(i) is not None]
            missing = [i for i in items if get(i) is None]
            items = sorted(present, key=get, reverse=descending) + missing
        return items


def like(pattern: str) -> re.Pattern[str]:
    """A TWS wildcard pattern as a case-insensitive regular expression."""
    parts = (".*" if c in "@*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def compile_oql(text: str, fields: Mapping[str, Field]) -> Query:
    parser = _Parser(_tokens(text), {name.lower(): (name, f) for name, f in fields.items()})
    return parser.query()


def field_names(text: str) -> set[str]:
    """The field names a filter uses, as written (every bare word that is not a keyword)."""
    return {value for kind, value in _tokens(text) if kind == "word"}


# --- tokens -------------------------------------------------------------------------------------

_TOKEN = re.compile(r"""\s*(?:
    (?P<str>'(?:[^']|'')*')
  | (?P<num>-?\d+(?:\.\d+)?(?![A-Za-z_]))
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[()\[\],])
  | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
)""", re.VERBOSE)


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos, text = 0, text or ""
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise OqlError(f"unexpected text at position {pos}: {text[pos:pos + 20]!r}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "str":
            value = value[1:-1].replace("''", "'")
        elif kind == "word":
            kind = "kw" if value.upper() in _KEYWORDS else "word"
            value = value.upper() if kind == "kw" else value
        tokens.append((kind, value))
        pos = match.end()
    return tokens


_KEYWORDS = frozenset({"AND", "OR", "NOT", "LIKE", "IN", "ORDER", "BY", "ASC", "DESC", "TRUE", "FALSE"})
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "!=": operator.ne, "<>": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}


# --- parser -------------------------------------------------------------------------------------

class _Parser:
    """Recursive descent straight into closures; OR chains of equalities become one set lookup."""

    def __init__(self, tokens: list[tuple[str, str]], fields: Mapping[str, tuple[str, Field]]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.fields = fields

    def peek(self, *values: str) -> bool:
        return self.pos < len(self.tokens) and self.tokens[self.pos][1] in values and self.tokens[self.pos][0] in {
            "kw", "op", "punct"}

    def take(self) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise OqlError("unexpected end of filter")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def expect(self, value: str) -> None:
        kind, got = self.take()
        if got != value or kind == "str":
            raise OqlError(f"expected {value!r}, found {got!r}")

    def query(self) -> Query:
        keep: Predicate = _always
        if self.tokens and not self.peek("ORDER"):
            keep = self.expr()
        order = self.order() if self.peek("ORDER") else ()
        if self.pos != len(self.tokens):
            raise OqlError(f"unexpected {self.tokens[self.pos][1]!r}")
        return Query(keep=keep, order=order)

    def order(self) -> tuple[tuple[Callable[[Any], Any], bool], ...]:
        self.expect("ORDER")
        self.expect("BY")
        keys = []
        while True:
            _, field = self.field()
            descending = False
            if self.peek("ASC", "DESC"):
                descending = self.take()[1] == "DESC"
            keys.append((field.get, descending))
            if not self.peek(","):
                return tuple(keys)
            self.take()

    def expr(self) -> Predicate:
        terms = [self.term()]
        while self.peek("OR"):
            self.take()
            terms.append(self.term())
        return terms[0] if len(terms) == 1 else _any_of(terms)

    def term(self) -> Predicate:
        factors = [self.factor()]
        while self.peek("AND"):
            self.take()
            factors.append(self.factor())
        return factors[0] if len(factors) == 1 else _all_of(factors)

    def factor(self) -> Predicate:
        if self.peek("NOT"):
            self.take()
            inner = self.factor()
            return lambda item: not inner(item)
        if self.peek("("):
            self.take()
            inner = self.expr()
            self.expect(")")
            return inner
        return self.comparison()

    def field(self) -> tuple[str, Field]:
        kind, name = self.take()
        if kind != "word":
            raise OqlError(f"expected a field name, found {name!r}")
        found = self.fields.get(name.lower())
        if found is None:
            raise OqlError(f"unknown field {name!r}")
        return found

    def literal(self) -> str:
        kind, value = self.take()
        if kind in {"str", "num"} or (kind == "kw" and value in {"TRUE", "FALSE"}):
            return value
        raise OqlError(f"expected a value, found {value!r}")

    def comparison(self) -> Predicate:
        name, field = self.field()
        negate = False
        if self.peek("NOT"):
            self.take()
            negate = True
            if not self.peek("LIKE", "IN"):
                raise OqlError(f"expected LIKE or IN after {name} NOT")
        if self.peek("IN"):
            self.take()
            test = _member(field, frozenset(field.parse(v) for v in self.values()))
        elif self.peek("LIKE"):
            self.take()
            test = _like(field, self.literal())
        else:
            kind, op = self.take()
            if kind != "op":
                raise OqlError(f"expected an operator after {name}, found {op!r}")
            value = field.parse(self.literal())
            test = _member(field, frozenset({value})) if op == "=" else _compare(field, _COMPARE[op], value)
        if negate:
            inner = test
            return lambda item: not inner(item)
        return test

    def values(self) -> list[str]:
        self.expect("[")
        values = [self.literal()]
        while self.peek(","):
            self.take()
            values.append(self.literal())
        self.expect("]")
        return values


def _always(_item: Any) -> bool:
    return True


def _any_of(tests: Sequence[Predicate]) -> Predicate:
    merged = _merge_members(tests)
    if len(merged) == 1:
        return merged[0]
    return lambda item: any(test(item) for test in merged)


def _all_of(tests: Sequence[Predicate]) -> Predicate:
    return lambda item: all(test(item) for test in tests)


def _merge_members(tests: Sequence[Predicate]) -> list[Predicate]:
    """``s = 'A' OR s = 'B' OR s = 'C'`` (how the FAILED group is sent) reads the field once."""
    by_field: dict[int, tuple[Field, set[Any]]] = {}
    rest: list[Predicate] = []
    for test in tests:
        member = getattr(test, "member", None)
        if member is None:
            rest.append(test)
            continue
        field, values = member
        entry = by_field.setdefault(id(field), (field, set()))
        entry[1].update(values)
    return [_member(field, frozenset(values)) for field, values in by_field.values()] + rest


def _member(field: Field, values: frozenset[Any]) -> Predicate:
    get = field.get
    if field.many:
        def test(item: Any) -> bool:
            return any(v in values for v in get(item))
    else:
        def test(item: Any) -> bool:
            return get(item) in values
    test.member = (field, values)  # type: ignore[attr-defined]
    return test


def _compare(field: Field, compare: Callable[[Any, Any], bool], value: Any) -> Predicate:
    get = field.get

    def one(v: Any) -> bool:
        if v is None:
            return compare is operator.ne
        try:
            return compare(v, value)
        except TypeError:
            return False

    if field.many:
        if compare is operator.ne:
            return lambda item: all(one(v) for v in get(item))
        return lambda item: any(one(v) for v in get(item))
    return lambda item: one(get(item))


def _like(field: Field, pattern: str) -> Predicate:
    parsed = field.parse(pattern) if field.text is None else pattern
    regex = like(parsed if isinstance(parsed, str) else pattern)
    text = field.text or field.get
    if field.many:
        return lambda item: any(v is not None and regex.fullmatch(str(v)) is not None for v in text(item))
    return lambda item: (v := text(item)) is not None and regex.fullmatch(str(v)) is not None
