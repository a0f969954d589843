"""Compile a parsed, schema-checked query spec into one SQLAlchemy Core ``Select``.

One compiler for every engine; a dialect subclass (``postgres.py``, ``duckdb.py``) only names
its SQLAlchemy dialect and the few constructs that differ. Everything the spec names is
looked up in the :class:`~crm_kernel.query.schema.Schema`, so identifiers come from the
catalog or reflection and values are always bound parameters.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field, replace

import sqlalchemy as sa

from ...errors import QuerySpecError
from ...model.money import converted_value
from .. import values
from ..dates import period_window, relative_window
from ..operators import OPERATORS
from ..schema import (
    NUMERIC_TYPES,
    ORDERED_TYPES,
    TEMPORAL_TYPES,
    Schema,
    SchemaColumn,
    TableInfo,
    default_columns,
)
from ..spec import (
    Aggregate,
    Group,
    QuerySpec,
    Related,
    Rule,
    SelectItem,
    json_document,
    parameter_names,
    parse,
    show,
)

_FAMILY = {t: "number" for t in NUMERIC_TYPES} | {t: "temporal" for t in TEMPORAL_TYPES}


@dataclass(frozen=True)
class OutputColumn:
    """A result column: its name and field type (decides its polars dtype on every engine)."""

    name: str
    type: str
    scale: int | None = None
    label: str | None = None  # what a person reads above it (the catalog's label); None: the name


@dataclass
class CompiledQuery:
    statement: sa.Select
    columns: list[OutputColumn]
    dialect: sa.Dialect
    spec: QuerySpec
    preview_dialect: sa.Dialect | None = None  # one whose literal SQL reads naturally
    # Hidden columns after ``columns`` (a seek only): the last row's sort keys, for the next page.
    keys: list[OutputColumn] = field(default_factory=list)

    def bound(self) -> sa.engine.Compiled:
        """The statement compiled for its engine, IN lists expanded: text plus parameters."""
        return self.statement.compile(dialect=self.dialect, compile_kwargs={"render_postcompile": True})

    @property
    def sql(self) -> str:
        """The SQL text with placeholders, as sent to the engine."""
        return str(self.bound())

    @property
    def params(self) -> dict:
        return self.bound().params

    def preview(self) -> str:
        """The SQL with values inlined, for reading only (never executed)."""
        try:
            dialect = self.preview_dialect or self.dialect
            return str(self.statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        except Exception:  # a type without a literal form: show placeholders and values
            compiled = self.bound()
            return f"{compiled}\n-- parameters: {compiled.params}"


class Scope:
    """Where field paths resolve: a table (or alias) and the many-to-one joins hung on it."""

    def __init__(self, compiler: Compiler, info: TableInfo, base: sa.FromClause, anonymous: bool):
        self.compiler, self.schema, self.info, self.base = compiler, compiler.schema, info, base
        self.anonymous = anonymous  # subquery scopes use generated alias names
        self.joins: dict[str, tuple[TableInfo, sa.FromClause]] = {}
        self.join_order: list[tuple[sa.FromClause, sa.ColumnElement]] = []

    def resolve(self, path: str, where: str) -> tuple[sa.ColumnElement, SchemaColumn]:
        parts = path.split(".")
        info, alias = self.info, self.base
        for i, part in enumerate(parts[:-1]):
            if part == "custom_fields" and i == len(parts) - 2:
                return self._custom(info, alias, parts[-1], path, where)
            relation = info.relations.get(part)
            if relation is None:
                known = ", ".join(sorted(info.relations)) or "none"
                if part in info.columns:
                    raise QuerySpecError(
                        where,
                        f"{part!r} is a field of {info.name}, not a relation to follow; "
                        f"relations of {info.name}: {known}",
                    )
                raise QuerySpecError(where, f"{info.name} has no relation {part!r}; its relations: {known}")
            info, alias = self._join(".".join(parts[: i + 1]), alias, relation, where)
        name = parts[-1]
        column = info.columns.get(name)
        if column is None:
            if name in info.relations:
                raise QuerySpecError(where, f"{name!r} is a relation; pick one of its fields, e.g. {name}.id")
            raise QuerySpecError(where, f"{info.name} has no field {name!r}; fields: {', '.join(info.columns)}")
        if column.computed:
            return self.compiler.computed(column.computed, alias), column
        return alias.c[name], column

    def _custom(self, info, alias, key, path, where):
        column = info.custom.get(key)
        if column is None:
            declared = ", ".join(sorted(info.custom)) or "none"
            raise QuerySpecError(where, f"custom field {key!r} of {info.name} is not declared; declared: {declared}")
        if column.type == "tags":  # a multiselect: its JSON array as a list of text
            value = alias.c.custom_fields.op("->", return_type=alias.c.custom_fields.type)(sa.literal(key, sa.Text))
            return self.compiler.read_custom_list(value), SchemaColumn(path, column.type, column.label)
        text = alias.c.custom_fields.op("->>", return_type=sa.Text())(sa.literal(key, sa.Text))
        return self.compiler.read_custom(text, column.type), SchemaColumn(path, column.type, column.label)

    def _join(self, key, parent_alias, relation, where) -> tuple[TableInfo, sa.FromClause]:
        if key not in self.joins:
            target = self.schema.tables[relation.target]  # relations come from the catalog, as do their targets
            source = self.compiler.source(target)
            alias = source.alias() if self.anonymous else source.alias(key.replace(".", "__"))
            self.joins[key] = (target, alias)
            self.join_order.append((alias, parent_alias.c[relation.field] == alias.c.id))
        return self.joins[key]

    def from_clause(self) -> sa.FromClause:
        clause = self.base
        for alias, on in self.join_order:
            clause = clause.outerjoin(alias, on)
        return clause


# The form a custom field's text (``custom_fields->>key``) must have to be read as its declared
# type: canonical JSON and ISO forms, tested alike on every engine, so both read the same rows.
# Text of any other form (one record's {"seats": "many"}) reads as null instead of failing the
# query; what a form cannot rule out (30 February) the dialect's checked cast turns into null.
# Numbers read as doubles (at most 10^299, inside a double's range); timestamps keep a day's
# margin from the years 1 and 9999 so that no time zone pushes them out of Python's range.
_DATE = r"(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_INNER_DATE = (
    r"(000[2-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])"
    r"-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
)
_TIME = r"[T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?(Z|[+-](0[0-9]|1[0-4]):[0-5][0-9])?"
_NUMBER = r"^-?[0-9]{1,200}(\.[0-9]{1,200})?([eE][+-]?[0-9]{1,2})?$"
CUSTOM_FORMS: dict[str, tuple[str, sa.types.TypeEngine]] = {
    "integer": (r"^-?[0-9]{1,18}$", sa.BigInteger()),
    "number": (_NUMBER, sa.Double()),
    "money": (_NUMBER, sa.Double()),
    "boolean": (r"^(true|false)$", sa.Boolean()),
    "date": (f"^{_DATE}$", sa.Date()),
    "timestamp": (f"^{_INNER_DATE}({_TIME})?$", sa.DateTime(timezone=True)),
}


class ElementScope:
    """Where the fields of a match group resolve: ``""`` is the element itself."""

    def __init__(self, element: sa.ColumnElement):
        self.element = element

    def resolve(self, path: str, where: str):
        if path != "":
            raise QuerySpecError(where, f'inside a match group the field is "" (each element), not {path!r}')
        return self.element, SchemaColumn("", "text", "Element")


class OutputScope:
    """Resolves names in ``having`` and ``order_by``: group keys and aggregates by alias."""

    def __init__(self, outputs: dict[str, tuple[sa.ColumnElement, SchemaColumn]]):
        self.outputs = outputs

    def resolve(self, path: str, where: str):
        if path not in self.outputs:
            raise QuerySpecError(
                where, f"{path!r} is not a group key or aggregate; available: {', '.join(self.outputs) or 'none'}"
            )
        return self.outputs[path]


_SOURCES: dict[tuple, sa.TableClause] = {}


class Compiler:
    """Compiles for one SQLAlchemy dialect. Subclasses set ``dialect`` and ``name``."""

    name = "base"
    dialect: sa.Dialect
    preview_dialect: sa.Dialect | None = None
    # Where the engine keeps every row, soft-deleted ones too (None: the tables themselves).
    # The compiler hides deleted rows itself, so joins can still reach them.
    all_rows_schema: str | None = None

    def __init__(
        self,
        schema: Schema | None = None,
        *,
        timezone: str = "UTC",
        now: dt.datetime | None = None,
        params: dict | None = None,
        check_only: bool = False,
    ):
        self.schema = schema or Schema.from_catalog()
        self.params = json_document(dict(params or {}), "params")
        self.check_only = check_only  # checking a spec to save: a parameter without a value is fine
        self.params_used: set[str] = set()
        try:
            self.tz = zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise QuerySpecError("", f"unknown time zone {timezone!r} (CRM_TIMEZONE)") from None
        self.now = (now or dt.datetime.now(self.tz)).astimezone(self.tz)

    def source(self, info: TableInfo) -> sa.TableClause:
        """The table clause to read ``info`` from on this engine (built once per table shape)."""
        if self.all_rows_schema is None:
            return info.table
        key = (self.all_rows_schema, info.table.name, tuple(c.name for c in info.table.columns))
        if key not in _SOURCES:
            columns = [sa.column(c.name, c.type) for c in info.table.columns]
            _SOURCES[key] = sa.table(info.table.name, *columns, schema=self.all_rows_schema)
        return _SOURCES[key]

    # -- entry point ----------------------------------------------------------------------

    def compile(self, spec) -> CompiledQuery:
        spec = parse(spec)
        self.declared = spec.source.get("parameters") or {}
        self.params_used = set()
        info = self.schema.table(spec.entity)
        if info is None:
            raise QuerySpecError(
                "entity", f"unknown table or view {spec.entity!r}; entities: {', '.join(sorted(self.schema.tables))}"
            )
        root = self.source(info)
        scope = Scope(self, info, root if root is info.table else root.alias(info.name), anonymous=False)
        where = self._visible(scope)
        if spec.where is not None:
            condition = self.visit_group(spec.where, scope)
            if condition is not None:
                where.append(condition)
        if spec.grouped:
            columns, outputs, stmt_columns, group_exprs = self._grouped(spec, scope)
        else:
            if spec.having is not None:
                raise QuerySpecError("having", "needs group_by or aggregates")
            columns, outputs, stmt_columns = self._plain(spec, scope)
            group_exprs = []
        keys = self._order(spec, scope, outputs)  # before the FROM clause: a sort key may need a join
        stmt = sa.select(*stmt_columns).select_from(scope.from_clause())
        if where:
            stmt = stmt.where(*where)
        if group_exprs:
            stmt = stmt.group_by(*group_exprs)
        if spec.having is not None:
            condition = self.visit_group(spec.having, OutputScope(outputs), allow_related=False)
            if condition is not None:
                stmt = stmt.having(condition)
        asked = len(spec.order_by)  # then the id, as a plain ascending tie-breaker
        stmt = stmt.order_by(
            *(sort(expr, descending) for expr, _, descending in keys[:asked]), *(expr for expr, _, _ in keys[asked:])
        )
        seek_columns = []
        if spec.after is not None:
            condition, (hidden, seek_columns) = self._seek(spec, scope, keys)
            stmt = stmt.add_columns(*hidden)
            if condition is not None:
                stmt = stmt.where(condition)
        if spec.limit is not None:
            stmt = stmt.limit(spec.limit)
        if spec.offset:
            stmt = stmt.offset(spec.offset)
        self._check_params_used()
        return CompiledQuery(stmt, columns, self.dialect, spec, self.preview_dialect, seek_columns)

    def _check_params_used(self) -> None:
        """A parameter given but named by no rule and declared nowhere is a typo, not a no-op."""
        stray = sorted(set(self.params) - self.params_used - set(self.declared))
        if stray:
            known = ", ".join(sorted(self.params_used | set(self.declared))) or "none"
            raise QuerySpecError(
                f"params.{stray[0]}", f"no rule uses parameter {stray[0]!r}; this query's parameters: {known}"
            )

    @staticmethod
    def _visible(scope: Scope) -> list:
        """Soft-deleted rows are not part of any result (joins may still follow them)."""
        return [scope.base.c.deleted_at.is_(None)] if scope.info.soft_delete else []

    # -- shape ----------------------------------------------------------------------------

    def computed(self, kind: str, alias: sa.FromClause) -> sa.ColumnElement:
        """The SQL of a computed field (``schema.COMPUTED``) on a row of ``alias``."""
        if kind == "full_name":
            # || and not concat_ws: no contact (an outer join's nulls) must read as null, not ""
            return alias.c.first_name + sa.literal(" ", sa.Text) + alias.c.last_name
        if kind in ("reporting_value", "reporting_weighted"):
            rates = self.schema.table("exchange_rates")
            value = converted_value(
                alias.c.value, alias.c.currency, alias.c.actual_close_date, self.source(rates).alias()
            )
            if kind == "reporting_weighted":
                weighted = sa.func.round(value * sa.func.coalesce(alias.c.probability, 0), 2)
                value = sa.cast(weighted, sa.Numeric(18, 2))
            return value
        raise QuerySpecError("", f"no computed field {kind!r} on the {self.name} engine")

    def _plain(self, spec: QuerySpec, scope: Scope):
        items = [(item, None) for item in spec.select] or [
            (SelectItem("select", default.field, default.alias), default.label)
            for default in default_columns(scope.info, self.schema)
        ]
        columns, outputs, stmt_columns = [], {}, []
        for item, label in items:
            expr, column = scope.resolve(item.field, item.path)
            labelled = expr.label(item.alias)
            self._add_output(outputs, item.alias, item.path, labelled, column)
            stmt_columns.append(shown(expr, column).label(item.alias) if column.type == "json" else labelled)
            if label is None:  # a field of the row under its own name reads as the catalog labels it
                label = column.label if item.alias == item.field else item.alias
            columns.append(OutputColumn(item.alias, column.type, column.scale, label))
        return columns, outputs, stmt_columns

    def _grouped(self, spec: QuerySpec, scope: Scope):
        if spec.select:
            raise QuerySpecError(
                "select", "with group_by or aggregates the columns are the group keys and the aggregates: remove select"
            )
        columns, outputs, stmt_columns, group_exprs = [], {}, [], []
        for key in spec.group_by:
            expr, column = scope.resolve(key.field, key.path)
            if key.trunc:
                if column.type not in TEMPORAL_TYPES:
                    raise QuerySpecError(
                        f"{key.path}.trunc",
                        f"{key.field} is a {column.type} field; only dates and timestamps can be truncated",
                    )
                expr = truncate(expr, key.trunc, column.type, self.tz)
                column = SchemaColumn(key.alias, "date", column.label)
            self._add_output(outputs, key.alias, key.path, expr, column)
            group_exprs.append(expr)
            stmt_columns.append(shown(expr, column).label(key.alias))
            columns.append(OutputColumn(key.alias, column.type, column.scale))
        for agg in spec.aggregates:
            expr, column = self.visit_aggregate(agg, scope)
            self._add_output(outputs, agg.alias, agg.path, expr, column)
            stmt_columns.append(expr.label(agg.alias))
            columns.append(OutputColumn(agg.alias, column.type, column.scale))
        return columns, outputs, stmt_columns, group_exprs

    @staticmethod
    def _add_output(outputs, alias, path, expr, column):
        if alias in outputs:
            raise QuerySpecError(path, f'two columns are named {alias!r}; rename one with "as"')
        outputs[alias] = (expr, column)

    def visit_aggregate(self, agg: Aggregate, scope: Scope) -> tuple[sa.ColumnElement, SchemaColumn]:
        if agg.field is None:
            return sa.func.count(), SchemaColumn(agg.alias, "integer", agg.alias)
        expr, column = scope.resolve(agg.field, f"{agg.path}.field")
        if agg.fn == "count":
            return sa.func.count(expr), SchemaColumn(agg.alias, "integer", agg.alias)
        if agg.fn == "count_distinct":
            return sa.func.count(sa.distinct(expr)), SchemaColumn(agg.alias, "integer", agg.alias)
        if agg.fn in ("sum", "avg") and column.type not in NUMERIC_TYPES:
            raise QuerySpecError(f"{agg.path}.fn", f"{agg.fn} needs a number field; {agg.field} is {column.type}")
        if agg.fn in ("min", "max") and column.type not in ORDERED_TYPES:
            raise QuerySpecError(
                f"{agg.path}.fn", f"{agg.fn} needs a number, text or date field; {agg.field} is {column.type}"
            )
        if agg.fn == "avg":
            return sa.cast(sa.func.avg(expr), sa.Double()), SchemaColumn(agg.alias, "float", agg.alias)
        if agg.fn == "sum":
            return sa.func.sum(expr), SchemaColumn(agg.alias, column.type, agg.alias, scale=column.scale)
        fn = sa.func.min if agg.fn == "min" else sa.func.max
        return fn(expr), SchemaColumn(agg.alias, column.type, agg.alias, column.values, column.scale)

    def _order(self, spec: QuerySpec, scope: Scope, outputs) -> list[tuple[sa.ColumnElement, SchemaColumn, bool]]:
        """The sort keys: (expression, its field, descending?)."""
        keys = []
        for item in spec.order_by:
            if item.field in outputs:
                expr, column = outputs[item.field]
            elif spec.grouped:
                raise QuerySpecError(
                    item.path, f"{item.field!r} is not a group key or aggregate; sort by one of {', '.join(outputs)}"
                )
            else:
                expr, column = scope.resolve(item.field, item.path)
            keys.append((expr, column, item.descending))
        paged = spec.limit is not None or spec.offset or spec.after is not None
        if not spec.grouped and "id" in scope.info.columns and paged:
            # a total order, so pages are stable on every engine
            keys.append((scope.base.c.id, scope.info.columns["id"], False))
        return keys

    def _seek(self, spec: QuerySpec, scope: Scope, keys) -> tuple[sa.ColumnElement | None, tuple[list, list]]:
        """``after``: the condition that starts the page after the row it names, and the hidden
        columns (``__after_<n>``) that give the next page's ``after``."""
        if spec.grouped:
            raise QuerySpecError("after", "keyset paging is for rows, not groups; page groups with offset")
        if "id" not in scope.info.columns:
            raise QuerySpecError(
                "after", f"keyset paging needs an id to break ties; {spec.entity} has none, page it with offset"
            )
        exprs = [
            (expr.element if isinstance(expr, sa.sql.elements.Label) else expr, column, descending)
            for expr, column, descending in keys
        ]
        for (_, column, _), item in zip(exprs, spec.order_by, strict=False):
            if column.type in ("json", "tags"):
                raise QuerySpecError(item.path, f"keyset paging cannot sort by {column.type} field {item.field}")
        hidden = [sa.sql.expression.label(f"__after_{i}", expr) for i, (expr, _, _) in enumerate(exprs)]
        columns = [OutputColumn(f"__after_{i}", column.type, column.scale) for i, (_, column, _) in enumerate(exprs)]
        if not spec.after:
            return None, (hidden, columns)
        if len(spec.after) != len(exprs):
            raise QuerySpecError(
                "after",
                f"needs {len(exprs)} values, the sort keys of the last row before the page "
                f"(its order_by fields, then id); got {len(spec.after)}",
            )
        after = [
            None if value is None else values.scalar(value, column, f"after[{i}]", self.tz)
            for i, (value, (_, column, _)) in enumerate(zip(spec.after, exprs, strict=True))
        ]
        keys = []
        for i, (expr, column, descending) in enumerate(exprs):
            if column.type == "enum" and column.values:
                # An enum sorts by its values' order; compared with a text value DuckDB would
                # compare text. Both engines compare the positions alike.
                position = {value: n for n, value in enumerate(column.values)}
                after[i] = None if after[i] is None else position[after[i]]
                expr = sa.case(*((expr == value, n) for value, n in position.items()))
            keys.append((expr, descending))
        condition = seek_condition(keys, after)
        return condition, (hidden, columns)

    # -- filters --------------------------------------------------------------------------

    def visit_group(self, group: Group, scope, allow_related: bool = True) -> sa.ColumnElement | None:
        parts = []
        for rule in group.rules:
            if isinstance(rule, Group):
                part = self.visit_group(rule, scope, allow_related)
            elif isinstance(rule, Related):
                if not allow_related:
                    raise QuerySpecError(rule.path, "related-record rules belong in where, not having")
                part = self.visit_related(rule, scope)
            else:
                part = self.visit_rule(rule, scope)
            if part is not None:
                parts.append(part)
        if not parts:
            return None  # an empty group filters nothing
        combined = parts[0] if len(parts) == 1 else (sa.and_ if group.combinator == "and" else sa.or_)(*parts)
        return sa.not_(combined) if group.negate else combined

    def visit_rule(self, rule: Rule, scope) -> sa.ColumnElement:
        expr, column = scope.resolve(rule.field, f"{rule.path}.field")
        op = OPERATORS[rule.operator]
        if not op.applies_to(column.type):
            valid = ", ".join(o.name for o in OPERATORS.values() if o.applies_to(column.type))
            raise QuerySpecError(
                f"{rule.path}.operator",
                f"{rule.operator!r} does not apply to {column.type} field {rule.field}; use one of {valid}",
            )
        path = f"{rule.path}.value"
        if rule.value_source == "parameter":
            return self._with_parameters(rule, op, column, scope)
        if column.type == "tags":
            return self._tags_rule(rule, expr)
        if rule.match is not None:
            raise QuerySpecError(
                f"{rule.path}.match", f"match is for multi-valued fields; {rule.field} is a {column.type} field"
            )
        if rule.value_source == "field":
            return op.build(expr, self._other_fields(rule, op, column, scope))
        match op.arity:
            case "none":
                value = None
            case "one":
                value = values.scalar(rule.value, column, path, self.tz)
            case "list":
                value = values.listed(rule.value, column, path, self.tz)
            case "pair":
                value = values.pair(rule.value, column, path, self.tz)
            case "relative":
                amount, unit = values.relative(rule.value, path)
                try:
                    value = relative_window(rule.operator, amount, unit, column.type, self.now)
                except (OverflowError, ValueError):  # past the calendar's years 1 to 9999
                    raise QuerySpecError(
                        f"{path}.amount", f"a window of {show(amount)} {unit}s reaches outside the years 1 to 9999"
                    ) from None
            case "period":
                value = period_window(rule.operator, column.type, self.now)
        return op.build(expr, value)

    def _other_fields(self, rule: Rule, op, column: SchemaColumn, scope):
        """``valueSource: "field"``: the value names another field of the row (two for
        between, one or more for in), of the same type family."""
        path = f"{rule.path}.value"
        if op.arity == "none":
            raise QuerySpecError(
                f"{rule.path}.operator", f"{rule.operator!r} takes no value, so it cannot compare with another field"
            )
        if op.arity not in ("one", "list", "pair"):
            raise QuerySpecError(f"{rule.path}.operator", f"{rule.operator!r} takes a date window, not another field")
        if not isinstance(rule.value, str | list):
            raise QuerySpecError(path, 'with valueSource "field" the value names another field')
        names = values.as_list(rule.value, path) if op.arity != "one" else [rule.value]
        if op.arity == "pair" and len(names) != 2:
            raise QuerySpecError(path, f'{rule.operator} compares with two fields, low and high: "low,high"')
        if not names:
            raise QuerySpecError(path, "names no field")
        others = []
        for name in names:
            if not isinstance(name, str):
                raise QuerySpecError(path, f"{show(name)} is not a field name")
            other, other_column = scope.resolve(name, path)
            if _FAMILY.get(column.type, column.type) != _FAMILY.get(other_column.type, other_column.type):
                raise QuerySpecError(
                    path, f"cannot compare {column.type} field {rule.field} with {other_column.type} field {name}"
                )
            others.append(other)
        return others[0] if op.arity == "one" else (tuple(others) if op.arity == "pair" else others)

    def _with_parameters(self, rule: Rule, op, column: SchemaColumn, scope) -> sa.ColumnElement:
        """``valueSource: "parameter"``: the value names parameters given at run time (one, or
        a comma-separated list for in and between); a declared parameter may have a default.
        Their values are then checked as the rule's own value would be."""
        names = parameter_names(rule.value)
        given = []
        for name in names:
            self.params_used.add(name)
            if name in self.params:
                given.append(self.params[name])
            elif isinstance(self.declared.get(name), dict) and "default" in self.declared[name]:
                given.append(self.declared[name]["default"])
            elif self.check_only:
                return sa.true()  # its value comes when the query runs
            else:
                raise QuerySpecError(
                    f"params.{name}",
                    f"parameter {name!r} ({rule.field} {rule.operator}) has no "
                    f"value; give it, e.g. params={{{name!r}: ...}}",
                )
        if op.arity in ("list", "pair") and len(given) > 1:
            value = given
        elif len(given) == 1:
            value = given[0]
        else:
            raise QuerySpecError(f"{rule.path}.value", f"{rule.operator} takes one parameter, not {len(given)}")
        try:
            return self.visit_rule(replace(rule, value=value, value_source="value"), scope)
        except QuerySpecError as exc:
            if not exc.path.startswith(f"{rule.path}.value"):
                raise
            label = ", ".join(names)
            raise QuerySpecError(
                f"params.{names[0]}", f"parameter {label!r} for {rule.field} {rule.operator}: {exc.problem}"
            ) from None

    def _tags_rule(self, rule: Rule, tags: sa.ColumnElement) -> sa.ColumnElement:
        """A rule on a multi-valued field, as conditions on its elements (``unnest``, the same
        SQL on both engines). Tags compare without regard to case."""
        if rule.value_source == "field":
            raise QuerySpecError(
                f"{rule.path}.valueSource",
                f"{rule.field} holds several values; compare it with values, not with another field",
            )
        elements = sa.func.unnest(tags).table_valued("value").render_derived("element")
        element = elements.c.value
        tag = SchemaColumn("tag", "text", "Tag")

        def having(condition=None) -> sa.ColumnElement:
            inner = sa.select(sa.literal(1)).select_from(elements)
            return sa.exists(inner.where(condition) if condition is not None else inner)

        def same(value) -> sa.ColumnElement:
            return sa.func.lower(element) == sa.func.lower(sa.literal(value, sa.Text))

        path = f"{rule.path}.value"
        match rule.operator:
            case "null" | "notNull":
                return sa.not_(having()) if rule.operator == "null" else having()
            case "contains" | "doesNotContain":
                found = having(same(values.scalar(rule.value, tag, path, self.tz)))
                return found if rule.operator == "contains" else sa.not_(found)
            case "in" | "notIn":
                found = having(sa.or_(*(same(v) for v in values.listed(rule.value, tag, path, self.tz))))
                return found if rule.operator == "in" else sa.not_(found)
            case "=" if rule.match is not None:
                return self._match(rule, elements, element)
            case "=":
                raise QuerySpecError(
                    f"{rule.path}.match",
                    f'"=" on {rule.field} compares its elements: give '
                    '"match": {"mode": "some"} and a group as the value',
                )
        raise QuerySpecError(f"{rule.path}.operator", f"{rule.operator!r} does not apply to {rule.field}")

    def _match(self, rule: Rule, elements, element) -> sa.ColumnElement:
        """react-querybuilder's match modes: how many elements pass the nested group."""
        condition = self.visit_group(rule.value, ElementScope(element), allow_related=False)
        counted = sa.select(sa.func.count()).select_from(elements)
        matched = (counted.where(condition) if condition is not None else counted).scalar_subquery()
        total = sa.select(sa.func.count()).select_from(elements).scalar_subquery()
        mode, threshold = rule.match.mode, rule.match.threshold
        if mode == "all":
            return sa.and_(total > 0, matched == total)
        if mode == "none":
            return matched == 0
        if mode == "some":
            return matched >= 1
        compare = {"atLeast": lambda a, b: a >= b, "atMost": lambda a, b: a <= b, "exactly": lambda a, b: a == b}[mode]
        if isinstance(threshold, int):
            return compare(matched, sa.literal(threshold, sa.BigInteger))
        # A share of the array: of an empty array no share can be told.
        share = sa.cast(matched, sa.Double) / sa.func.nullif(sa.cast(total, sa.Double), 0)
        return compare(share, sa.literal(float(threshold), sa.Double))

    def visit_related(self, rule: Related, scope: Scope) -> sa.ColumnElement:
        parent = scope.info
        links = [(child, fk) for child, fk in self.schema.children(parent.name) if child == rule.related]
        if rule.via is not None:
            links = [(child, fk) for child, fk in links if fk == rule.via]
        if not links:
            known = sorted({child for child, _ in self.schema.children(parent.name)})
            detail = f" via {rule.via}" if rule.via else ""
            raise QuerySpecError(
                f"{rule.path}.related",
                f"{parent.name} has no related {rule.related!r}{detail}; related: {', '.join(known) or 'none'}",
            )
        if len(links) > 1:
            options = ", ".join(fk for _, fk in links)
            raise QuerySpecError(
                f"{rule.path}.via", f'{rule.related} point at {parent.name} through {options}; say which with "via"'
            )
        child_name, fk = links[0]
        child = self.schema.table(child_name)
        inner = Scope(self, child, self.source(child).alias(), anonymous=True)
        conditions = [inner.base.c[fk] == scope.base.c.id, *self._visible(inner)]
        if rule.where is not None:
            condition = self.visit_group(rule.where, inner)
            if condition is not None:
                conditions.append(condition)
        if rule.quantifier == "count":
            count = sa.select(sa.func.count()).select_from(inner.from_clause()).where(*conditions)
            return OPERATORS[rule.operator].build(count.scalar_subquery(), rule.value)
        exists = sa.exists(sa.select(sa.literal(1)).select_from(inner.from_clause()).where(*conditions))
        return exists if rule.quantifier == "any" else sa.not_(exists)

    # -- what engines may change --------------------------------------------------------

    def read_custom(self, text: sa.ColumnElement, kind: str) -> sa.ColumnElement:
        """A custom field's text as its declared type; null where the text does not fit it."""
        if kind not in CUSTOM_FORMS:
            return text
        form, target = CUSTOM_FORMS[kind]
        return sa.case((text.regexp_match(form), self.checked_cast(text, target)))

    def read_custom_list(self, value: sa.ColumnElement) -> sa.ColumnElement:
        """A custom field's JSON array as a list of text (null where it is no array)."""
        raise QuerySpecError("", f"multiselect custom fields cannot be read on the {self.name} engine")

    def checked_cast(self, text: sa.ColumnElement, target: sa.types.TypeEngine) -> sa.ColumnElement:
        """A cast of text whose form is right; null where its value is not (30 February)."""
        return sa.try_cast(text, target)


# -- the same SQL on every engine -----------------------------------------------------------


def shown(expr, column: SchemaColumn) -> sa.ColumnElement:
    """An output column as fetched: JSON as its text, which the result frame reads itself
    (a driver's own JSON parsing fails on a number of 4,300 digits, for every row)."""
    return sa.cast(expr, sa.Text()) if column.type == "json" else expr


def truncate(expr, unit: str, field_type: str, tz: zoneinfo.ZoneInfo) -> sa.ColumnElement:
    """The date a value falls in when cut to ``unit`` (weeks start on Monday)."""
    if field_type == "date":
        expr = sa.cast(expr, sa.DateTime())
    else:  # the query's wall-clock time, whatever zone the session is in
        expr = sa.func.timezone(tz.key, expr)
    return sa.cast(sa.func.date_trunc(unit, expr), sa.Date())


def sort(expr, descending: bool) -> sa.ColumnElement:
    """Empty values sort last in both directions, on every engine."""
    return (expr.desc() if descending else expr.asc()).nulls_last()


def seek_condition(keys: list[tuple[sa.ColumnElement, bool]], after: list) -> sa.ColumnElement:
    """Rows strictly after the row whose sort keys are ``after``, in the order ``keys`` give
    (expression, descending?; empty values last in both directions): the same rows OFFSET
    would skip to, without reading the ones before."""

    def same(expr, value):
        return expr.is_(None) if value is None else expr == value

    alternatives, equal = [], []
    for (expr, descending), value in zip(keys, after, strict=True):
        if value is not None:  # nothing sorts after an empty value but other empty values (ties)
            beyond = expr < value if descending else expr > value
            alternatives.append(sa.and_(*equal, sa.or_(beyond, expr.is_(None))))
        equal.append(same(expr, value))
    return sa.or_(*alternatives) if alternatives else sa.false()
