"""The query spec: JSON in, a typed tree out.

This module checks shape only (keys, JSON types, known operator names); whether fields
exist and values suit their types is checked against a schema by the compiler. Every
error names the path of the offending part, e.g. ``where.rules[2].rules[0].operator``.

A spec is a JSON document, and that is checked first, everywhere in it: a Python object with
no JSON form (a set, a date, ``object()``), a key that is not text, a non-finite number, text
holding NUL or lone surrogates, or nesting deeper than :data:`MAX_DEPTH` is refused with its
path before any other check, so nothing after it meets a value JSON cannot hold. A
``uuid.UUID`` is the one exception (every API takes an id as a UUID): it becomes its text.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from ..errors import QuerySpecError
from .operators import COMPARISONS, OPERATORS

AGGREGATE_FUNCTIONS = ("count", "count_distinct", "sum", "avg", "min", "max")
TRUNCATIONS = ("day", "week", "month", "quarter", "year")
QUANTIFIERS = ("any", "none", "count")
MAX_DEPTH = 64  # nested objects and lists; a group with its rules list is two levels
BIGINT = 2**63 - 1  # the largest count, limit or offset both engines take
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_BITS = 13_000  # whole numbers up to about 3,900 digits: Python prints at most 4,300


VALUE_SOURCES = ("value", "field", "parameter")
MATCH_MODES = ("all", "none", "some", "atLeast", "atMost", "exactly")


@dataclass(frozen=True)
class Match:
    """How many elements of a multi-valued field (tags) must pass the rule's nested group:
    react-querybuilder's match modes. ``threshold`` counts elements when it is a whole number
    of 1 or more, and is a share of the array when it lies between 0 and 1."""

    mode: str
    threshold: int | float | None = None


@dataclass(frozen=True)
class Rule:
    path: str
    field: str
    operator: str
    value: Any = None
    value_source: str = "value"  # "field": ``value`` names another field; "parameter": names parameters
    match: Match | None = None  # a rule over a multi-valued field's elements


@dataclass(frozen=True)
class Related:
    """A rule over a one-to-many relation: do (any / no / how many) child rows match?"""

    path: str
    related: str
    quantifier: str
    where: Group | None = None
    via: str | None = None  # the child's foreign key, when several point at the parent
    operator: str | None = None  # for quantifier "count"
    value: Any = None


@dataclass(frozen=True)
class Group:
    path: str
    combinator: str = "and"
    negate: bool = False
    rules: tuple[Rule | Related | Group, ...] = ()


@dataclass(frozen=True)
class SelectItem:
    path: str
    field: str
    alias: str


@dataclass(frozen=True)
class GroupKey:
    path: str
    field: str
    trunc: str | None
    alias: str


@dataclass(frozen=True)
class Aggregate:
    path: str
    fn: str
    field: str | None
    alias: str


@dataclass(frozen=True)
class OrderItem:
    path: str
    field: str
    descending: bool


@dataclass(frozen=True)
class QuerySpec:
    entity: str
    select: tuple[SelectItem, ...] = ()
    where: Group | None = None
    group_by: tuple[GroupKey, ...] = ()
    aggregates: tuple[Aggregate, ...] = ()
    having: Group | None = None
    order_by: tuple[OrderItem, ...] = ()
    limit: int | None = None
    offset: int = 0
    # Keyset paging: the sort keys (order_by, then id) of the row before this page; ``()`` for
    # the first page. Pages then cost the same however deep (no OFFSET rows to skip).
    after: tuple | None = None
    source: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def grouped(self) -> bool:
        return bool(self.group_by or self.aggregates)


TOP_LEVEL_KEYS = {
    "entity",
    "select",
    "where",
    "group_by",
    "aggregates",
    "having",
    "order_by",
    "limit",
    "offset",
    "after",
    "name",
    "description",
    "parameters",
}
PARAMETER_KEYS = {"type", "label", "default", "description"}


def parse(spec: dict | str | QuerySpec) -> QuerySpec:
    """Parse a spec given as a dict, as JSON text, or pass a parsed one through."""
    if isinstance(spec, QuerySpec):
        return spec
    if isinstance(spec, (str, bytes)):
        try:
            spec = json.loads(spec)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise QuerySpecError("", f"not valid JSON: {exc}") from None
        except RecursionError:
            raise QuerySpecError("", f"nested more than {MAX_DEPTH} levels deep") from None
    spec = json_document(spec, "")
    _expect(spec, dict, "", "a query spec object")
    unknown = sorted(set(spec) - TOP_LEVEL_KEYS)
    if unknown:
        raise QuerySpecError(_join("", unknown[0]), f"unknown key; a spec has {', '.join(sorted(TOP_LEVEL_KEYS))}")
    if "entity" not in spec:
        raise QuerySpecError("entity", 'is required: the table or view to query, e.g. "deals"')
    entity = _name(spec["entity"], "entity")
    _parameters(spec.get("parameters"))
    return QuerySpec(
        entity=entity,
        select=tuple(_select_item(item, f"select[{i}]") for i, item in enumerate(_list(spec, "select"))),
        where=_top_group(spec.get("where"), "where"),
        group_by=tuple(_group_key(item, f"group_by[{i}]") for i, item in enumerate(_list(spec, "group_by"))),
        aggregates=tuple(_aggregate(item, f"aggregates[{i}]") for i, item in enumerate(_list(spec, "aggregates"))),
        having=_top_group(spec.get("having"), "having"),
        order_by=tuple(_order_item(item, f"order_by[{i}]") for i, item in enumerate(_list(spec, "order_by"))),
        limit=_count(spec.get("limit"), "limit"),
        offset=_count(spec.get("offset"), "offset") or 0,
        after=_after(spec),
        source=spec,
    )


def json_document(value: Any, path: str, depth: int = 0) -> Any:
    """A copy of ``value`` holding only what JSON can (UUIDs as text), or the refusal of the
    first part that is not JSON, named by its path."""
    if depth > MAX_DEPTH:
        raise QuerySpecError(path, f"nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if value.bit_length() > MAX_BITS:  # Python cannot even print it (nor json.dumps)
            raise QuerySpecError(path, f"{show(value)} is too long for a number")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QuerySpecError(path, f"must be a finite number, not {value}")
        return value
    if isinstance(value, str):
        return _json_text(value, path)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise QuerySpecError(f"{path}[{show(key)}]", f"keys must be text, not {type(key).__name__}")
            key = _json_text(key, _join(path, key))
            out[key] = json_document(item, _join(path, key), depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [json_document(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
    hint = '; write dates and times as text such as "2026-01-31"' if hasattr(value, "isoformat") else ""
    raise QuerySpecError(
        path, f"{type(value).__name__} is not a JSON value (text, number, true/false, null, list or object){hint}"
    )


def _json_text(text: str, path: str) -> str:
    if "\x00" in text:
        raise QuerySpecError(path, "text must not contain the NUL character (\\x00)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise QuerySpecError(path, "text is not valid Unicode (a lone surrogate)") from None
    return text


def _join(path: str, key: str) -> str:
    """``where.rules``; a key that is empty or holds punctuation is quoted: ``where["a.b"]``."""
    if not _PLAIN_KEY.match(key):
        return f"{path}[{json.dumps(key)}]"
    return f"{path}.{key}" if path else key


def _expect(value, kind, path, what):
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise QuerySpecError(path, f"must be {what}, not {show(value, json.dumps)}")


def show(value, spell=repr) -> str:
    """A value as an error message quotes it: short, and never failing (a 5,000-digit number
    has no repr)."""
    if isinstance(value, int) and value.bit_length() > 192:
        return f"a number of about {int(value.bit_length() * 0.30103)} digits"
    try:
        text = spell(value)
    except (ValueError, TypeError, RecursionError):  # e.g. a list holding a 5,000-digit number
        return f"a {type(value).__name__}"
    return text if len(text) <= 60 else text[:57] + "..."


def _name(value, path) -> str:
    _expect(value, str, path, "a name (text)")
    if not value.strip():
        raise QuerySpecError(path, "must not be empty")
    return value.strip()


def _list(spec: dict, key: str) -> list:
    value = spec.get(key)
    if value is None:
        return []
    _expect(value, list, key, "a list")
    return value


def _count(value, path) -> int | None:
    if value is None:
        return None
    _expect(value, int, path, "a whole number")
    if value < 0:
        raise QuerySpecError(path, "must not be negative")
    if value > BIGINT:
        raise QuerySpecError(path, f"must be at most {BIGINT}")
    return value


def _after(spec: dict) -> tuple | None:
    if spec.get("after") is None:
        return None
    _expect(spec["after"], list, "after", "a list: the sort keys of the last row before the page ([] for the first)")
    return tuple(spec["after"])


def _keys(item: dict, path: str, allowed: set[str]) -> None:
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise QuerySpecError(_join(path, unknown[0]), f"unknown key; allowed here: {', '.join(sorted(allowed))}")


def _select_item(item, path) -> SelectItem:
    if isinstance(item, str):
        return SelectItem(path, _name(item, path), item.strip())
    _expect(item, dict, path, 'a field name or {"field": ..., "as": ...}')
    _keys(item, path, {"field", "as"})
    name = _name(item.get("field"), f"{path}.field")
    return SelectItem(path, name, _name(item.get("as", name), f"{path}.as"))


def _group_key(item, path) -> GroupKey:
    if isinstance(item, str):
        return GroupKey(path, _name(item, path), None, item.strip())
    _expect(item, dict, path, 'a field name or {"field": ..., "trunc": ...}')
    _keys(item, path, {"field", "trunc", "as"})
    name = _name(item.get("field"), f"{path}.field")
    trunc = item.get("trunc")
    if trunc is not None and trunc not in TRUNCATIONS:
        raise QuerySpecError(f"{path}.trunc", f"unknown truncation {show(trunc)}; use one of {', '.join(TRUNCATIONS)}")
    default_alias = f"{name}_{trunc}" if trunc else name
    return GroupKey(path, name, trunc, _name(item.get("as", default_alias), f"{path}.as"))


def _aggregate(item, path) -> Aggregate:
    _expect(item, dict, path, 'an object like {"fn": "sum", "field": "value", "as": "total"}')
    _keys(item, path, {"fn", "field", "as"})
    fn = item.get("fn")
    if fn not in AGGREGATE_FUNCTIONS:
        raise QuerySpecError(f"{path}.fn", f"unknown function {show(fn)}; use one of {', '.join(AGGREGATE_FUNCTIONS)}")
    name = item.get("field")
    if name is None and fn != "count":
        raise QuerySpecError(f"{path}.field", f"{fn} needs a field")
    name = _name(name, f"{path}.field") if name is not None else None
    alias = item.get("as") or (f"{fn}_{name}".replace(".", "_") if name else fn)
    return Aggregate(path, fn, name, _name(alias, f"{path}.as"))


def _order_item(item, path) -> OrderItem:
    if isinstance(item, str):
        name = _name(item, path)
        return OrderItem(path, name.lstrip("-"), name.startswith("-"))
    _expect(item, dict, path, 'a field name or {"field": ..., "dir": "asc"|"desc"}')
    _keys(item, path, {"field", "dir"})
    direction = item.get("dir", "asc")
    if direction not in ("asc", "desc"):
        raise QuerySpecError(f"{path}.dir", f'must be "asc" or "desc", not {show(direction)}')
    return OrderItem(path, _name(item.get("field"), f"{path}.field"), direction == "desc")


def _top_group(item, path) -> Group | None:
    """``where`` or ``having``: absent, disabled, or a group."""
    if item is None:
        return None
    return _group(item, path) if not _disabled(item, path) else None


def _disabled(item, path) -> bool:
    """react-querybuilder's ``disabled``: the rule or group is kept in the spec but ignored."""
    if not isinstance(item, dict) or "disabled" not in item:
        return False
    _expect(item["disabled"], bool, f"{path}.disabled", "true or false")
    return item["disabled"]


def _group(item, path, element: bool = False) -> Group:
    _expect(item, dict, path, 'a rule group {"combinator": "and", "rules": [...]}')
    _keys(item, path, {"combinator", "not", "rules", "id", "disabled"})
    negate = item.get("not", False)
    _expect(negate, bool, f"{path}.not", "true or false")
    rules = item.get("rules", [])
    _expect(rules, list, f"{path}.rules", "a list of rules and groups")
    if any(isinstance(rule, str) for rule in rules):
        if "combinator" in item:
            raise QuerySpecError(
                f"{path}.combinator", "a group whose combinators stand between its rules has no combinator of its own"
            )
        return _independent(rules, path, negate, element)
    combinator = item.get("combinator", "and")
    combinator = combinator.lower() if isinstance(combinator, str) else combinator
    if combinator not in ("and", "or"):
        raise QuerySpecError(f"{path}.combinator", f'must be "and" or "or", not {show(item.get("combinator"))}')
    parsed = (
        _rule_or_group(r, f"{path}.rules[{i}]", element)
        for i, r in enumerate(rules)
        if not _disabled(r, f"{path}.rules[{i}]")
    )
    return Group(path, combinator, negate, tuple(parsed))


def _independent(items: list, path: str, negate: bool, element: bool = False) -> Group:
    """react-querybuilder's independent combinators, ``[rule, "and", rule, "or", rule]``, read as
    it reads them: "and" binds tighter than "or". A disabled rule leaves with the combinator
    that joined it to the rest."""
    terms: list[tuple[str | None, Any]] = []  # (combinator before it, parsed rule or group)
    for i, item in enumerate(items):
        where = f"{path}.rules[{i}]"
        if i % 2:
            _expect(item, str, where, 'a combinator ("and" or "or") between two rules')
            if item.lower() not in ("and", "or"):
                raise QuerySpecError(where, f'must be "and" or "or", not {show(item)}')
            continue
        if isinstance(item, str):
            raise QuerySpecError(where, "a rule or group belongs here; combinators stand between rules")
        if not _disabled(item, where):
            joined = items[i - 1].lower() if i else None
            terms.append((joined, _rule_or_group(item, where, element)))
    if len(items) % 2 == 0 and items:
        raise QuerySpecError(f"{path}.rules[{len(items) - 1}]", "a combinator must stand between two rules, not last")
    segments: list[list] = []
    for joined, term in terms:
        if not segments or joined == "or":
            segments.append([term])
        else:
            segments[-1].append(term)
    parts = tuple(seg[0] if len(seg) == 1 else Group(path, "and", False, tuple(seg)) for seg in segments)
    if len(parts) == 1 and isinstance(parts[0], Group) and not negate:
        return parts[0]
    return Group(path, "or", negate, parts)


def _rule_or_group(item, path, element: bool = False) -> Rule | Related | Group:
    """A rule, a related-record rule or a nested group. Inside a match group (``element``) a
    rule's field may be ``""``: the element itself, as react-querybuilder writes it."""
    _expect(item, dict, path, "a rule or a rule group")
    if "rules" in item or "combinator" in item:
        return _group(item, path, element)
    if "related" in item:
        return _related(item, path)
    _keys(item, path, {"field", "operator", "value", "valueSource", "id", "disabled", "match"})
    if "field" not in item:
        raise QuerySpecError(path, 'a rule needs a field (or is it a group without "rules"?)')
    name = "" if element and item["field"] == "" else _name(item["field"], f"{path}.field")
    operator = item.get("operator")
    if not isinstance(operator, str) or operator not in OPERATORS:  # a list is not a key of the table
        raise QuerySpecError(f"{path}.operator", f"unknown operator {show(operator)}")
    source = item.get("valueSource", "value")
    if source not in VALUE_SOURCES:
        raise QuerySpecError(f"{path}.valueSource", f"must be one of {', '.join(VALUE_SOURCES)}, not {show(source)}")
    value = item.get("value")
    if source == "parameter":
        _parameter_names(value, f"{path}.value")
    match = _match(item["match"], f"{path}.match") if item.get("match") is not None else None
    if match is not None:
        if source != "value":
            raise QuerySpecError(f"{path}.valueSource", "a rule with match takes a group of rules as its value")
        _expect(value, dict, f"{path}.value", 'a rule group over the field\'s elements (field "")')
        value = _group(value, f"{path}.value", element=True)
    return Rule(path, name, operator, value, source, match)


def _match(item, path) -> Match:
    _expect(item, dict, path, '{"mode": "some"} (all, none, some, atLeast, atMost, exactly)')
    _keys(item, path, {"mode", "threshold"})
    mode = item.get("mode")
    if mode not in MATCH_MODES:
        raise QuerySpecError(f"{path}.mode", f"must be one of {', '.join(MATCH_MODES)}, not {show(mode)}")
    threshold = item.get("threshold")
    if mode in ("atLeast", "atMost", "exactly"):
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise QuerySpecError(
                f"{path}.threshold",
                f"{mode} needs a threshold: a count (1, 2, ...) or a share between 0 and 1, not {show(threshold)}",
            )
        if threshold < 0 or (threshold >= 1 and threshold != int(threshold)) or threshold > BIGINT:
            raise QuerySpecError(
                f"{path}.threshold",
                f"must be a whole count of 1 or more or a share between 0 and 1, not {show(threshold)}",
            )
        threshold = int(threshold) if threshold >= 1 else threshold
    elif threshold is not None:
        raise QuerySpecError(f"{path}.threshold", f"mode {mode} takes no threshold")
    return Match(mode, threshold)


def parameter_names(value: str) -> list[str]:
    """The parameters a rule names: one, or a comma-separated list (for in and between)."""
    return [part.strip() for part in value.split(",") if part.strip()]


def _parameter_names(value, path) -> None:
    _expect(value, str, path, 'the name of a parameter (or "low,high" / "a,b,c" for between and in)')
    names = parameter_names(value)
    if not names:
        raise QuerySpecError(path, "must name a parameter")
    for name in names:
        if not _PLAIN_KEY.match(name):
            raise QuerySpecError(path, f"{show(name)} is not a parameter name (letters, digits and _)")


def _parameters(declared) -> None:
    """``"parameters": {"min_value": {"type": "money", "default": 10000, "label": "..."}}``."""
    if declared is None:
        return
    _expect(declared, dict, "parameters", "an object of parameter declarations")
    for name, declaration in declared.items():
        path = _join("parameters", name)
        if not _PLAIN_KEY.match(name):
            raise QuerySpecError(path, "a parameter name is letters, digits and _")
        _expect(declaration, dict, path, 'an object like {"type": "money", "default": 10000}')
        _keys(declaration, path, PARAMETER_KEYS)


def _related(item, path) -> Related:
    _keys(item, path, {"related", "quantifier", "where", "via", "operator", "value", "id", "disabled"})
    quantifier = item.get("quantifier", "any")
    if quantifier not in QUANTIFIERS:
        raise QuerySpecError(f"{path}.quantifier", f"must be one of {', '.join(QUANTIFIERS)}, not {show(quantifier)}")
    operator, value = item.get("operator"), item.get("value")
    if quantifier == "count":
        if operator not in COMPARISONS:
            raise QuerySpecError(f"{path}.operator", "a count rule compares with = != < > <= >=")
        _expect(value, int, f"{path}.value", "a whole number")
        if abs(value) > BIGINT:
            raise QuerySpecError(f"{path}.value", f"must be between -{BIGINT} and {BIGINT}")
    elif operator is not None or value is not None:
        raise QuerySpecError(path, f'operator and value belong to quantifier "count", not {show(quantifier)}')
    where = _group(item["where"], f"{path}.where") if item.get("where") is not None else None
    via = _name(item["via"], f"{path}.via") if item.get("via") is not None else None
    return Related(path, _name(item["related"], f"{path}.related"), quantifier, where, via, operator, value)


def spec_parameters(spec: QuerySpec) -> dict[str, dict]:
    """The parameters a spec names, in order of appearance, each with its declaration (type,
    label, default) when it has one: what a form asks for before the query runs."""
    declared = spec.source.get("parameters") or {}
    found: dict[str, dict] = {}

    def walk(group: Group | None) -> None:
        for rule in group.rules if group is not None else ():
            if isinstance(rule, Group):
                walk(rule)
            elif isinstance(rule, Related):
                walk(rule.where)
            elif rule.value_source == "parameter":
                for name in parameter_names(rule.value):
                    found.setdefault(name, dict(declared.get(name, {})) | {"field": rule.field})

    walk(spec.where)
    walk(spec.having)
    for name, declaration in declared.items():
        found.setdefault(name, dict(declaration))
    return found


def plain_form(spec) -> dict:
    """The spec as JSON in its plainest form: react-querybuilder's independent combinators
    turned into nested groups, disabled rules and groups left out, ids dropped. The builder
    widget edits this form; it selects the same rows."""
    parsed = parse(spec)
    source = dict(parsed.source)
    for key, group in (("where", parsed.where), ("having", parsed.having)):
        source.pop(key, None)
        if group is not None:
            source[key] = _plain_group(group)
    return source


def _plain_group(group: Group) -> dict:
    plain: dict[str, Any] = {"combinator": group.combinator}
    if group.negate:
        plain["not"] = True
    plain["rules"] = [
        _plain_group(r) if isinstance(r, Group) else _plain_related(r) if isinstance(r, Related) else _plain_rule(r)
        for r in group.rules
    ]
    return plain


def _plain_rule(rule: Rule) -> dict:
    plain: dict[str, Any] = {"field": rule.field, "operator": rule.operator}
    if rule.match is not None:
        plain["value"] = _plain_group(rule.value)
        plain["match"] = {"mode": rule.match.mode} | (
            {"threshold": rule.match.threshold} if rule.match.threshold is not None else {}
        )
    elif rule.value is not None:
        plain["value"] = rule.value
    if rule.value_source != "value":
        plain["valueSource"] = rule.value_source
    return plain


def _plain_related(rule: Related) -> dict:
    plain: dict[str, Any] = {"related": rule.related, "quantifier": rule.quantifier}
    if rule.where is not None:
        plain["where"] = _plain_group(rule.where)
    for key, value in (("via", rule.via), ("operator", rule.operator), ("value", rule.value)):
        if value is not None:
            plain[key] = value
    return plain
