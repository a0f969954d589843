"""Which file column fills which CRM field: automatic from headers and their common synonyms,
overridden by a JSON mapping that can also rename values, fill blanks and build values.

A mapping file (every key optional)::

    {
      "columns": {"Account": "company", "Deal Stage": "stage", "Notes": null,
                  "opportunity_id": "custom_fields.opportunity_id"},
      "values": {"stage": {"Engaging": "Qualified"}, "industry": {"technolgy": "technology"}},
      "templates": {"title": "{opportunity_id}", "email": "{sales_agent|slug}@example.com"},
      "defaults": {"currency": "USD"},
      "fill_required": {"close_reason": "Not recorded"},
      "multiply": {"annual_revenue": 1000000},
      "unmapped": "custom_fields",
      "create_missing": ["company"],
      "date_format": "%d/%m/%Y"
    }

A target is a field of the entity, a relation by its natural key (``company``, ``owner``,
``stage``, ``contact``, ``product``, ``deal``), ``custom_fields.<key>``, or null (ignored).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ImportRefusedError
from ..model import catalog

IMPORTABLE = ("companies", "contacts", "deals", "activities", "users", "products")

# Relations a row names by a natural key: relation -> (its field, the entity it points at).
RELATIONS: dict[str, dict[str, tuple[str, str]]] = {
    "companies": {"owner": ("owner_id", "users")},
    "contacts": {"company": ("company_id", "companies"), "owner": ("owner_id", "users")},
    "deals": {
        "company": ("company_id", "companies"),
        "contact": ("contact_id", "contacts"),
        "stage": ("stage_id", "pipeline_stages"),
        "owner": ("owner_id", "users"),
        "product": ("product_id", "products"),
    },
    "activities": {
        "deal": ("deal_id", "deals"),
        "contact": ("contact_id", "contacts"),
        "company": ("company_id", "companies"),
        "owner": ("owner_id", "users"),
    },
    "users": {},
    "products": {},
}

# Bookkeeping an import may set from the file: a record keeps its own dates.
OWN_DATES = {"created_at"}
DEAL_DATES = {"stage_entered_at"}

_EMAIL = ["email", "e mail", "email address", "e mail address", "mail"]
_OWNER = [
    "owner",
    "owner email",
    "owner name",
    "account owner",
    "sales rep",
    "sales agent",
    "agent",
    "rep",
    "assigned to",
    "deal owner",
    "contact owner",
]
_COMPANY = ["company", "company name", "account", "account name", "organisation", "organization", "customer", "client"]
_CREATED = ["created", "created at", "created on", "create date", "created date", "date created"]

SYNONYMS: dict[str, dict[str, list[str]]] = {
    "companies": {
        "name": _COMPANY + ["name"],
        "domain": ["domain", "company domain", "email domain"],
        "website": ["website", "web site", "url", "homepage"],
        "industry": ["industry", "sector", "vertical"],
        "employees": ["employees", "number of employees", "headcount", "staff"],
        "annual_revenue": ["revenue", "annual revenue", "turnover"],
        "phone": ["phone", "telephone"],
        "email": _EMAIL,
        "owner": _OWNER,
        "created_at": _CREATED,
    },
    "contacts": {
        "first_name": ["first name", "firstname", "given name", "first", "forename"],
        "last_name": ["last name", "lastname", "surname", "family name", "last"],
        "email": _EMAIL,
        "phone": ["phone", "phone number", "telephone", "mobile", "mobile phone"],
        "job_title": ["job title", "title", "position", "role"],
        "company": _COMPANY,
        "owner": _OWNER,
        "lead_source": ["lead source", "source"],
        "lead_score": ["lead score", "score"],
        "lifecycle_stage": ["lifecycle stage", "lifecycle"],
        "created_at": _CREATED,
    },
    "deals": {
        "title": ["title", "deal", "deal name", "deal title", "opportunity", "opportunity name", "name"],
        "value": ["value", "amount", "deal value", "deal amount", "close value", "revenue"],
        "currency": ["currency", "currency code"],
        "stage": ["stage", "deal stage", "pipeline stage", "sales stage", "status"],
        "company": _COMPANY,
        "contact": ["contact", "contact email", "contact e mail"],
        "owner": _OWNER,
        "product": ["product", "product name", "item"],
        "expected_close_date": ["expected close date", "expected close", "target close date"],
        "actual_close_date": ["close date", "closed date", "actual close date", "closed on", "date closed"],
        "created_at": _CREATED + ["engage date", "opened", "open date"],
        "stage_entered_at": ["stage entered", "stage entered at", "in stage since", "stage date"],
        "probability": ["probability"],
        "lead_source": ["lead source", "source"],
        "description": ["description", "notes"],
        "close_reason": ["close reason", "reason", "loss reason"],
    },
    "activities": {
        "type": ["type", "activity type", "kind"],
        "subject": ["subject", "title", "summary"],
        "description": ["description", "notes", "body", "details"],
        "scheduled_at": ["scheduled", "scheduled at", "date", "start", "start time"],
        "completed_at": ["completed", "completed at", "done at"],
        "due_at": ["due", "due date", "due at"],
        "duration_minutes": ["duration", "duration minutes", "minutes"],
        "status": ["status"],
        "priority": ["priority"],
        "deal": ["deal", "deal title", "opportunity"],
        "contact": ["contact", "contact email"],
        "company": _COMPANY,
        "owner": _OWNER,
        "created_at": _CREATED,
    },
    "users": {
        "email": _EMAIL,
        "full_name": ["name", "full name", "user", "user name"],
        "role": ["role"],
        "active": ["active", "enabled"],
        "created_at": _CREATED,
    },
    "products": {
        "name": ["name", "product", "product name"],
        "family": ["family", "series", "product family", "product line", "line", "category"],
        "list_price": ["price", "list price", "sales price", "unit price"],
        "currency": ["currency"],
        "created_at": _CREATED,
    },
}

_KEYS = {
    "columns",
    "values",
    "templates",
    "defaults",
    "fill_required",
    "multiply",
    "unmapped",
    "create_missing",
    "date_format",
    "entity",
}
_PLACEHOLDER = re.compile(r"\{([^{}|]+)(?:\|(slug|lower|upper))?\}")


def normalise_header(name: str) -> str:
    """Lower case, words only: "E-mail Address" -> "e mail address"."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", name.lower()).split())


@dataclass
class Mapping:
    """How a file's columns become an entity's fields."""

    entity: str
    columns: dict[str, str | None] = field(default_factory=dict)  # header -> target (None: ignored)
    values: dict[str, dict[str, str]] = field(default_factory=dict)  # target -> {file value: CRM value}
    templates: dict[str, str] = field(default_factory=dict)  # target -> "{column} text {column|slug}"
    defaults: dict[str, str] = field(default_factory=dict)  # target -> value for blank cells
    fill_required: dict[str, str] = field(default_factory=dict)  # field -> value where a stage requires it
    multiply: dict[str, float] = field(default_factory=dict)  # numeric target -> factor
    unmapped: str = "ignore"  # or "custom_fields"
    create_missing: list[str] = field(default_factory=list)  # relations whose unknown keys create records
    date_format: str | None = None

    @property
    def targets(self) -> dict[str, str]:
        """target -> header, for the mapped columns."""
        return {t: h for h, t in self.columns.items() if t}

    def to_json(self) -> dict:
        data = {
            "entity": self.entity,
            "columns": self.columns,
            "values": self.values,
            "templates": self.templates,
            "defaults": self.defaults,
            "fill_required": self.fill_required,
            "multiply": self.multiply,
            "unmapped": self.unmapped,
            "create_missing": self.create_missing,
            "date_format": self.date_format,
        }
        return {k: v for k, v in data.items() if v or k in ("entity", "columns")}


def check_entity(entity: str) -> str:
    if entity not in IMPORTABLE:
        raise ImportRefusedError(f"cannot import {entity!r}; import one of {', '.join(IMPORTABLE)}")
    return entity


def valid_targets(entity: str) -> set[str]:
    """Every target a column may fill (custom_fields.<key> aside)."""
    e = catalog.entity(entity)
    own = {f.name for f in e.writable_fields if f.name != "custom_fields"}
    own -= {fld for fld, _ in RELATIONS[entity].values()}  # relations go by natural key
    extra = OWN_DATES | (DEAL_DATES if entity == "deals" else set())
    return own | set(RELATIONS[entity]) | extra


def auto_map(entity: str, headers: list[str]) -> dict[str, str | None]:
    """Each header's target by name, label or synonym; the first header wins a target."""
    check_entity(entity)
    e = catalog.entity(entity)
    targets = valid_targets(entity)
    lookup: dict[str, str] = {}
    for target in sorted(targets):  # field names and labels first, then synonyms
        lookup.setdefault(normalise_header(target), target)
        if e.has_field(target):
            lookup.setdefault(normalise_header(e.field(target).label), target)
    for target, words in SYNONYMS.get(entity, {}).items():
        for word in words:
            lookup.setdefault(word, target)
    mapped: dict[str, str | None] = {}
    taken: set[str] = set()
    for header in headers:
        target = lookup.get(normalise_header(header))
        if target is None and normalise_header(header).replace(" ", "") in ("email", "emailaddress"):
            target = "email" if "email" in targets else None
        if target in taken:
            target = None
        mapped[header] = target
        if target:
            taken.add(target)
    return mapped


def load_mapping(source: str | Path | dict | Mapping | None, entity: str, headers: list[str]) -> Mapping:
    """The automatic mapping for ``headers``, overridden by ``source`` (a JSON file, its dict, or
    a :class:`Mapping`); refuses unknown keys, headers and targets with a message naming them."""
    check_entity(entity)
    if isinstance(source, Mapping):
        data = source.to_json()
    elif isinstance(source, str | Path):
        try:
            data = json.loads(Path(source).read_text())
        except (OSError, ValueError) as exc:
            raise ImportRefusedError(f"cannot read the mapping {source}: {exc}") from exc
    else:
        data = dict(source or {})
    if not isinstance(data, dict):
        raise ImportRefusedError("a mapping is a JSON object")
    unknown = set(data) - _KEYS
    if unknown:
        raise ImportRefusedError(
            f"unknown mapping key(s) {', '.join(sorted(unknown))}; use {', '.join(sorted(_KEYS - {'entity'}))}"
        )
    if data.get("entity") not in (None, entity):
        raise ImportRefusedError(f"the mapping is for {data['entity']}, not {entity}")
    columns = auto_map(entity, headers)
    given = data.get("columns") or {}
    missing = [h for h in given if h not in headers]
    if missing:
        raise ImportRefusedError(
            f"the mapping names column(s) {', '.join(map(repr, missing))} that the file "
            f"does not have; its columns are {', '.join(map(repr, headers))}"
        )
    for header, target in given.items():  # an explicit target takes it from an automatic one
        if target:
            columns.update({h: None for h, t in columns.items() if t == target})
        columns[header] = target or None
    mapping = Mapping(
        entity=entity,
        columns=columns,
        values=data.get("values") or {},
        templates=data.get("templates") or {},
        defaults=data.get("defaults") or {},
        fill_required=data.get("fill_required") or {},
        multiply=data.get("multiply") or {},
        unmapped=data.get("unmapped") or "ignore",
        create_missing=list(data.get("create_missing") or []),
        date_format=data.get("date_format"),
    )
    _check(mapping, headers)
    return mapping


def _check(m: Mapping, headers: list[str]) -> None:
    allowed = valid_targets(m.entity)

    def bad(target: str) -> bool:
        return not (target in allowed or (target.startswith("custom_fields.") and len(target) > 14))

    wrong = [t for t in [*m.columns.values(), *m.templates, *m.defaults] if t and bad(t)]
    if wrong:
        raise ImportRefusedError(
            f"{', '.join(map(repr, wrong))} is not a target of {m.entity}; use one of "
            f"{', '.join(sorted(allowed))} or custom_fields.<key>"
        )
    if m.unmapped not in ("ignore", "custom_fields"):
        raise ImportRefusedError(f"unmapped is 'ignore' or 'custom_fields', not {m.unmapped!r}")
    unknown = [r for r in m.create_missing if r not in RELATIONS[m.entity] or r == "stage"]
    if unknown:
        raise ImportRefusedError(
            f"create_missing: {', '.join(map(repr, unknown))} cannot be created by importing {m.entity}"
        )
    for template in m.templates.values():
        for name, _ in _PLACEHOLDER.findall(template):
            if name not in headers:
                raise ImportRefusedError(f"the template {template!r} names {name!r}, which is not a column")


def template_parts(template: str) -> list[tuple[str, str | None]]:
    """``"{a|slug}@x"`` -> [("a", "slug"), ("@x", None)]; a literal comes with None as its filter
    and a leading "=" marker stripped: [(column, filter) or (literal, None)] in order."""
    parts: list[tuple[str, Any]] = []
    at = 0
    for match in _PLACEHOLDER.finditer(template):
        if match.start() > at:
            parts.append(("=" + template[at : match.start()], None))
        parts.append((match.group(1), match.group(2) or ""))
        at = match.end()
    if at < len(template):
        parts.append(("=" + template[at:], None))
    return parts
