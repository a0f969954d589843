"""The catalog: every CRM entity, its fields, their types, labels, enum values and relations.

This is the one description of the data model. The SQLAlchemy tables (``tables.py``),
write validation (``validation.py``), the query engine, forms and widgets all read it;
nothing else lists columns. ``tests/test_catalog.py`` proves it matches the migrated schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

FieldType = Literal[
    "text", "integer", "number", "money", "date", "timestamp", "enum", "boolean", "uuid", "json", "search", "tags"
]

# Field types and the Python values they hold (documentation and validation share this).
PYTHON_TYPES = {
    "text": "str",
    "integer": "int",
    "number": "Decimal",
    "money": "Decimal",
    "date": "date",
    "timestamp": "datetime",
    "enum": "str",
    "boolean": "bool",
    "uuid": "UUID",
    "json": "dict | list",
    "tags": "list[str]",
}


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    label: str = ""
    nullable: bool = True
    has_default: bool = False  # the database fills it when omitted
    readonly: bool = False  # written only by the system (ids, bookkeeping, generated columns)
    hidden: bool = False  # not shown or queried (search vectors)
    enum_type: str | None = None  # PostgreSQL enum type name
    values: tuple[str, ...] = ()  # enum values, in the type's order
    precision: int | None = None
    scale: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    format: str | None = None  # extra checks: email, currency, colour, identifier, custom_field_type, entity,
    # deal_fields (a list of deal field names), custom_field_options (a list of distinct texts)
    references: str | None = None  # entity a uuid field points at
    relation: str | None = None  # name of that many-to-one relation (company_id -> company)

    def __post_init__(self):
        if self.references and not self.relation:
            object.__setattr__(self, "relation", self.name.removesuffix("_id"))
        if not self.label:  # a reference reads as what it points at: company_id is "Company"
            object.__setattr__(self, "label", _label(self.relation or self.name))

    @property
    def required(self) -> bool:
        """Must be given on create."""
        return not (self.nullable or self.has_default or self.readonly)


@dataclass(frozen=True)
class Relation:
    """A many-to-one link: ``source.field`` references ``target.id``."""

    name: str
    source: str
    field: str
    target: str


@dataclass(frozen=True)
class Entity:
    name: str  # table name
    label: str  # plural, for menus
    singular: str
    title_field: str  # the field that names a record in lists and pickers
    fields: tuple[Field, ...]
    business: bool = True  # carries the standard bookkeeping columns and is written through services
    default_order: tuple[str, ...] = ("created_at", "id")  # how lists are sorted; "-name" is descending
    _by_name: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self):
        self._by_name.update({f.name: f for f in self.fields})

    def field(self, name: str) -> Field:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"{self.name} has no field {name!r}") from None

    def has_field(self, name: str) -> bool:
        return name in self._by_name

    @property
    def visible_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if not f.hidden)

    @property
    def writable_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if not (f.readonly or f.hidden))

    @property
    def relations(self) -> tuple[Relation, ...]:
        return tuple(Relation(f.relation, self.name, f.name, f.references) for f in self.fields if f.references)

    @property
    def soft_delete(self) -> bool:
        return self.has_field("deleted_at")


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


# -- field helpers: keep the entity definitions below one line per column -----------------


def text(name, **kw) -> Field:
    return Field(name, "text", **kw)


def integer(name, **kw) -> Field:
    return Field(name, "integer", **kw)


def money(name, precision=12, **kw) -> Field:
    return Field(name, "money", precision=precision, scale=2, minimum=0, **kw)


def ratio(name, **kw) -> Field:
    return Field(name, "number", precision=5, scale=4, minimum=0, maximum=1, **kw)


def enum(name, enum_type, values, **kw) -> Field:
    return Field(name, "enum", enum_type=enum_type, values=tuple(values), **kw)


def ref(name, target, **kw) -> Field:
    return Field(name, "uuid", references=target, **kw)


def flag(name, **kw) -> Field:
    return Field(name, "boolean", nullable=False, has_default=True, **kw)


def json(name, **kw) -> Field:
    return Field(name, "json", **kw)


def tags() -> Field:
    """Free labels (``["vip", "partner"]``), added by sql/015_tags.sql, hence last: text, none
    empty, each once (case aside)."""
    return Field("tags", "tags", label="Tags", nullable=False, has_default=True)


ROLES = ("admin", "manager", "rep", "analyst")
COMPANY_SIZES = ("startup", "small", "medium", "large", "enterprise")
CONTACT_METHODS = ("email", "phone", "sms", "linkedin")
LIFECYCLE_STAGES = ("lead", "prospect", "customer", "champion", "inactive")
DEAL_TYPES = ("new_business", "existing_business", "renewal", "upgrade")
PRIORITIES = ("low", "medium", "high", "urgent")
ACTIVITY_TYPES = ("call", "email", "meeting", "task", "note", "linkedin_message", "stage_change")
ACTIVITY_STATUSES = ("pending", "in_progress", "completed", "cancelled")

SYSTEM_USER_ID = "00000000-0000-0000-0000-000000000001"

# The system's own bookkeeping, outside the catalog and never queried. Secret tables are not
# copied to snapshots either (sign-in tokens are hashes, but whoever holds a snapshot has no
# business with them); the schema's version is (a snapshot records which schema it holds).
SECRET_TABLES = frozenset({"sign_in_tokens", "crm_user_logins"})
# Teams (sql/016) are read by the access functions and crm.access, not by queries (yet).
INTERNAL_TABLES = frozenset({"schema_migrations", "teams", "team_members"}) | SECRET_TABLES


def _id() -> Field:
    return Field("id", "uuid", label="ID", nullable=False, has_default=True, readonly=True)


def _bookkeeping() -> tuple[Field, ...]:
    return (
        Field("created_at", "timestamp", label="Created", nullable=False, has_default=True, readonly=True),
        Field("updated_at", "timestamp", label="Updated", nullable=False, has_default=True, readonly=True),
        ref("created_by", "users", relation="creator", label="Created by", readonly=True),
        ref("updated_by", "users", relation="updater", label="Updated by", readonly=True),
        Field("deleted_at", "timestamp", label="Deleted", readonly=True),
        integer("version", nullable=False, has_default=True, readonly=True),
        json("custom_fields", label="Custom fields", nullable=False, has_default=True),
    )


def _search() -> Field:
    return Field("search_vector", "search", readonly=True, hidden=True)


def _last_xact() -> Field:
    """The transaction that last wrote the row, kept by a trigger (sql/003_snapshot_tracking.sql)
    so that incremental snapshots can tell which rows changed since the previous one."""
    return Field(
        "last_xact",
        "number",
        label="Last writing transaction",
        precision=20,
        scale=0,
        nullable=False,
        has_default=True,
        readonly=True,
        hidden=True,
    )


USERS = Entity(
    "users",
    "Users",
    "User",
    "full_name",
    (
        _id(),
        text("email", label="E-mail", nullable=False, format="email"),
        text("full_name", nullable=False),
        enum("role", "user_role", ROLES, nullable=False, has_default=True),
        flag("active"),
        *_bookkeeping(),
        _last_xact(),
    ),
)

COMPANIES = Entity(
    "companies",
    "Companies",
    "Company",
    "name",
    (
        _id(),
        text("name", nullable=False),
        text("domain"),
        text("industry"),
        enum("size", "company_size", COMPANY_SIZES),
        integer("employees", minimum=0),
        money("annual_revenue", precision=16),
        text("website"),
        text("phone"),
        text("email", label="E-mail", format="email"),
        json("address"),
        ref("owner_id", "users"),
        *_bookkeeping(),
        _search(),
        _last_xact(),
        tags(),
    ),
)

CONTACTS = Entity(
    "contacts",
    "Contacts",
    "Contact",
    "last_name",
    (
        _id(),
        ref("company_id", "companies"),
        text("first_name", nullable=False),
        text("last_name", nullable=False),
        text("email", label="E-mail", format="email"),
        text("phone"),
        text("job_title"),
        enum("preferred_contact_method", "contact_method", CONTACT_METHODS),
        text("timezone", label="Time zone"),
        flag("is_primary", label="Primary contact"),
        text("lead_source"),
        integer("lead_score", minimum=0, maximum=100),
        enum("lifecycle_stage", "lifecycle_stage", LIFECYCLE_STAGES, nullable=False, has_default=True),
        json("social_profiles"),
        ref("owner_id", "users"),
        *_bookkeeping(),
        _search(),
        _last_xact(),
        tags(),
    ),
)

PIPELINE_STAGES = Entity(
    "pipeline_stages",
    "Pipeline stages",
    "Stage",
    "name",
    (
        _id(),
        text("name", nullable=False),
        text("description"),
        integer("position", nullable=False),
        ratio("probability", nullable=False, has_default=True),
        flag("is_active", label="Active"),
        flag("is_closed_won", label="Closed won"),
        flag("is_closed_lost", label="Closed lost"),
        json("required_fields", nullable=False, has_default=True, format="deal_fields"),
        text("colour", format="colour"),
        *_bookkeeping(),
        _last_xact(),
    ),
    default_order=("position",),
)

DEALS = Entity(
    "deals",
    "Deals",
    "Deal",
    "title",
    (
        _id(),
        ref("company_id", "companies"),  # nullable since sql/011: an opportunity with no account yet
        ref("contact_id", "contacts"),
        ref("stage_id", "pipeline_stages", nullable=False),
        ref("owner_id", "users"),
        text("title", nullable=False),
        text("description"),
        money("value"),
        text("currency", nullable=False, has_default=True, format="currency"),
        ratio("probability"),
        money("weighted_value", readonly=True),
        Field("expected_close_date", "date"),
        Field("actual_close_date", "date"),
        Field("first_contact_date", "date"),
        Field("last_activity_at", "timestamp", label="Last activity"),
        text("lead_source"),
        text("campaign"),
        enum("type", "deal_type", DEAL_TYPES, nullable=False, has_default=True),
        enum("priority", "priority_level", PRIORITIES, nullable=False, has_default=True),
        text("close_reason"),
        *_bookkeeping(),
        _search(),
        _last_xact(),
        # Added by sql/005_stage_entered_at.sql, hence after the columns above (the catalog follows
        # the table's column order); set when the deal enters a stage.
        Field("stage_entered_at", "timestamp", label="In stage since", nullable=False, has_default=True, readonly=True),
        ref("product_id", "products"),  # sql/011_import.sql
        tags(),  # sql/015_tags.sql
    ),
)

# What a deal sells (sql/011_import.sql): a list price travels with its currency.
PRODUCTS = Entity(
    "products",
    "Products",
    "Product",
    "name",
    (
        _id(),
        text("name", nullable=False),
        text("family"),
        money("list_price"),
        text("currency", nullable=False, has_default=True, format="currency"),
        *_bookkeeping(),
        _last_xact(),
    ),
    default_order=("name", "id"),
)

ACTIVITIES = Entity(
    "activities",
    "Activities",
    "Activity",
    "subject",
    (
        _id(),
        ref("deal_id", "deals"),
        ref("contact_id", "contacts"),
        ref("company_id", "companies"),
        ref("owner_id", "users"),
        enum("type", "activity_type", ACTIVITY_TYPES, nullable=False),
        text("subject", nullable=False),
        text("description"),
        Field("scheduled_at", "timestamp", label="Scheduled"),
        Field("completed_at", "timestamp", label="Completed"),
        Field("due_at", "timestamp", label="Due"),
        integer("duration_minutes", label="Duration (minutes)", minimum=0),
        enum("status", "activity_status", ACTIVITY_STATUSES, nullable=False, has_default=True),
        enum("priority", "priority_level", PRIORITIES, nullable=False, has_default=True),
        text("external_id", label="External ID"),
        text("external_source"),
        json("external_data"),
        *_bookkeeping(),
        _search(),
        _last_xact(),
    ),
)

SAVED_QUERIES = Entity(
    "saved_queries",
    "Saved queries",
    "Saved query",
    "name",
    (
        _id(),
        text("name", nullable=False),
        text("description"),
        text("entity", nullable=False, format="entity"),
        json("spec", nullable=False),
        ref("owner_id", "users"),
        flag("shared"),
        integer("use_count", nullable=False, has_default=True, readonly=True),
        Field("last_used_at", "timestamp", label="Last used", readonly=True),
        *_bookkeeping(),
        _last_xact(),
    ),
)

# A multiselect holds a JSON array of strings, each one of its declaration's options.
CUSTOM_FIELD_TYPES = ("text", "integer", "number", "date", "timestamp", "boolean", "multiselect")

CUSTOM_FIELD_DEFINITIONS = Entity(
    "custom_field_definitions",
    "Custom fields",
    "Custom field",
    "key",
    (
        _id(),
        text("entity", nullable=False),
        text("key", nullable=False, format="identifier"),
        text("type", nullable=False, format="custom_field_type"),
        text("label"),
        *_bookkeeping(),
        _last_xact(),
        json("options", format="custom_field_options"),  # sql/018_multiselect.sql: a multiselect's choices
    ),
)

AUDIT_LOG = Entity(
    "audit_log",
    "Audit log",
    "Audit entry",
    "operation",
    (
        Field("id", "integer", label="ID", nullable=False, has_default=True, readonly=True),
        ref("user_id", "users", nullable=False, readonly=True),
        Field("at", "timestamp", label="When", nullable=False, has_default=True, readonly=True),
        text("entity", nullable=False, readonly=True),
        Field("entity_id", "uuid", label="Record ID", readonly=True),  # None: an event such as an export
        text("operation", nullable=False, readonly=True),
        json("before", readonly=True),
        json("after", readonly=True),
        _last_xact(),
        # sql/011_import.sql: written by an import, dated with the record's own past.
        Field("imported", "boolean", nullable=False, has_default=True, readonly=True),
    ),
    business=False,
    default_order=("id",),
)

ROW_DELETIONS = Entity(
    "row_deletions",
    "Row deletions",
    "Row deletion",
    "table_name",
    (
        Field("id", "integer", label="ID", nullable=False, has_default=True, readonly=True),
        text("table_name", nullable=False, readonly=True),
        text("row_id", label="Row ID", readonly=True),  # None: the whole table was truncated
        Field(
            "xact",
            "number",
            label="Transaction",
            precision=20,
            scale=0,
            nullable=False,
            has_default=True,
            readonly=True,
        ),
        Field("at", "timestamp", label="When", nullable=False, has_default=True, readonly=True),
    ),
    business=False,
    default_order=("id",),
)

# Money (sql/008_money.sql): settings of the database, and rates into its reporting currency.
CRM_SETTINGS = Entity(
    "crm_settings",
    "Settings",
    "Setting",
    "key",
    (
        text("key", nullable=False, readonly=True),
        json("value", nullable=False, readonly=True),
        Field("updated_at", "timestamp", label="Updated", nullable=False, has_default=True, readonly=True),
        ref("updated_by", "users", relation="updater", label="Updated by", readonly=True),
    ),
    business=False,
    default_order=("key",),
)

EXCHANGE_RATES = Entity(
    "exchange_rates",
    "Exchange rates",
    "Exchange rate",
    "currency",
    (
        text("currency", nullable=False, readonly=True),
        Field("rate_date", "date", label="Date", nullable=False, readonly=True),
        Field(
            "rate",
            "number",
            label="Rate to the reporting currency",
            precision=24,
            scale=12,
            nullable=False,
            readonly=True,
        ),
        text("source", readonly=True),
    ),
    business=False,
    default_order=("currency", "rate_date"),
)

ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        USERS,
        COMPANIES,
        CONTACTS,
        PIPELINE_STAGES,
        PRODUCTS,
        DEALS,
        ACTIVITIES,
        SAVED_QUERIES,
        CUSTOM_FIELD_DEFINITIONS,
        AUDIT_LOG,
        ROW_DELETIONS,
        CRM_SETTINGS,
        EXCHANGE_RATES,
    )
}


def entity(name: str) -> Entity:
    try:
        return ENTITIES[name]
    except KeyError:
        raise KeyError(f"unknown entity {name!r}; known: {', '.join(ENTITIES)}") from None


def relations() -> Iterator[Relation]:
    for e in ENTITIES.values():
        yield from e.relations


def children(name: str) -> tuple[Relation, ...]:
    """One-to-many relations of an entity: the many-to-one relations that point at it."""
    return tuple(r for r in relations() if r.target == name)


__all__ = ["Entity", "Field", "Relation", "ENTITIES", "entity", "relations", "children", "SYSTEM_USER_ID"]
