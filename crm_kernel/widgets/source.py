"""Where the widgets' queries run: live PostgreSQL, or the latest snapshot in DuckDB.

Everything goes through ``crm.execute`` with a query spec; this module only decides which
engine and which snapshot, and builds the small specs the widgets need (row counts, pages,
distinct values). It holds no SQL.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import QuerySpecError
from ..model import ENTITIES
from ..query import QueryResult, RunHandle, parse
from ..query.engines import ENGINES, LABELS
from ..query.schema import default_fields
from ..query.spec import spec_parameters

if TYPE_CHECKING:
    import polars as pl

BACKENDS = LABELS  # engine name -> what the backend toggle shows
COUNT_ALIAS = "rows"
SUGGESTIONS = 50  # distinct values offered while typing


class Source:
    """Runs specs for the widgets on one backend. ``snapshot``: an opened snapshot, a snapshot
    folder or a parent of several (the newest is used, re-checked before each query), or None
    for the newest under ``$CRM_HOME/snapshots``."""

    def __init__(self, crm, backend: str = "postgres", snapshot=None):
        self.crm = crm
        self.backend = backend
        self.snapshot = snapshot
        self._opened = None  # (folder, Snapshot) we opened and must close
        self._tie_breakers: dict[tuple[str, str], list[str] | None] = {}
        # The paged spec, and the ``after`` of each page start read so far (keyset paging).
        self._seeks: tuple[tuple | None, dict[int, list]] = (None, {})
        self.handle: RunHandle | None = None  # set during a run that a Stop button may cancel
        self.params: dict = {}  # values of the specs' parameters (the workbench's parameter form)

    def execute(self, spec, fetch: str = "arrow") -> QueryResult:
        parsed = parse(spec)
        # Only the parameters this spec names: the counting and suggestion specs made from a
        # query keep some of its rules, and a parameter nothing uses is refused as a typo.
        named = spec_parameters(parsed)
        params = {name: value for name, value in self.params.items() if name in named}
        return self.crm.execute(
            parsed, self.backend, snapshot=self._engine_snapshot(), handle=self.handle, params=params, fetch=fetch
        )

    @property
    def engine_snapshot(self):
        """The ``snapshot`` argument as this source's engine takes it (None for the live database)."""
        return self.snapshot if ENGINES[self.backend].uses_snapshot else None

    def _engine_snapshot(self):
        """The opened snapshot for an engine that reads one, else None."""
        return self._snapshot() if ENGINES[self.backend].uses_snapshot else None

    def _snapshot(self):
        if hasattr(self.snapshot, "con"):
            return self.snapshot
        from .. import snapshot as snapshots
        from ..snapshot import store

        folder = store.resolve(
            Path(self.snapshot) if self.snapshot is not None else store.default_parent(self.crm.config)
        )
        if self._opened is None or self._opened[0] != folder:
            self.close()
            self._opened = (folder, snapshots.open(folder))
        return self._opened[1]

    def snapshot_parent(self) -> Path:
        """Where a new snapshot goes so that this source finds it: the folder given (or its
        parent, when a snapshot folder itself was given), else ``$CRM_HOME/snapshots``."""
        from ..snapshot import store

        if hasattr(self.snapshot, "path"):
            return self.snapshot.path.parent
        if self.snapshot is None:
            return store.default_parent(self.crm.config)
        folder = Path(self.snapshot)
        return folder.parent if (folder / "manifest.json").exists() else folder

    def describe(self) -> str:
        if not ENGINES[self.backend].uses_snapshot:
            return BACKENDS[self.backend]
        if hasattr(self.snapshot, "path"):
            return f"snapshot {self.snapshot.path.name}"
        return f"snapshot {self._opened[0].name}" if self._opened else "latest snapshot"

    def close(self) -> None:
        if self._opened is not None:
            self._opened[1].close()
            self._opened = None

    # -- what the widgets ask ----------------------------------------------------------------

    def count(self, spec: dict) -> tuple[int | None, float]:
        """Rows the spec returns, and the seconds it took; None for grouped specs (their count
        is known only once the last page is read)."""
        counting = count_spec(spec)
        if counting is None:
            return None, 0.0
        result = self.execute(counting)
        return rows_after_paging(spec, int(result.frame[COUNT_ALIAS][0])), result.execute_seconds

    def page(self, spec: dict, start: int, size: int) -> QueryResult:
        """Rows ``start`` .. ``start + size`` of the spec's result (fewer at its end).

        Records are paged by keyset: a page starts after the sort keys of the previous page's
        last row (kept from when it was read), so page 10,000 costs what page 1 costs. A page
        not reached from the one before it, a grouped result and a table without an id are
        paged with OFFSET."""
        spec = self.stable(spec)
        if not self._seekable(spec):
            return self.execute(page_spec(spec, start, size))
        key = (json.dumps(spec, sort_keys=True), size)
        if self._seeks[0] != key:
            self._seeks = (key, {0: []})
        after = self._seeks[1].get(start)
        if after is None:
            return self.execute(page_spec(spec, start, size))
        page = page_spec(spec, start, size, after=after)
        try:
            result = self.execute(page)
        except QuerySpecError as exc:
            if not exc.path.startswith(("after", "order_by")):
                raise
            self._seeks = (key, {})  # sorted by something keys cannot hold (tags): OFFSET it is
            return self.execute(page_spec(spec, start, size))
        if result.after is not None and result.row_count == page["limit"]:
            self._seeks[1][start + size] = result.after
        return result

    @staticmethod
    def _seekable(spec: dict) -> bool:
        parsed = parse(spec)
        return not parsed.grouped and parsed.entity in ENTITIES

    def stable(self, spec: dict) -> dict:
        """The spec with a sort that makes its pages stable. The engine adds the id to a paged
        sort; a table or view without an id is sorted by all its (sortable) output columns."""
        parsed = parse(spec)
        if parsed.grouped or parsed.entity in ENTITIES:
            return spec
        key = (self.backend, parsed.entity)
        if key not in self._tie_breakers:
            self._tie_breakers[key] = self._tie_breaker(parsed)
        extra = self._tie_breakers[key]
        if extra is None:
            return spec
        names = [item.alias for item in parsed.select] or extra
        ordered = {item.field for item in parsed.order_by}
        return {**spec, "order_by": list(spec.get("order_by") or []) + [n for n in names if n not in ordered]}

    def _tie_breaker(self, parsed) -> list[str] | None:
        """None when the table has an id; else its sortable columns."""
        engine = ENGINES[self.backend]
        with engine.connection(self.crm, self._engine_snapshot()) as conn:
            schema = engine.schema(conn, parsed)
        info = schema.table(parsed.entity)
        if info is None or "id" in info.columns:
            return None
        return [name for name, column in info.columns.items() if column.type not in ("json", "tags")]

    def pages(self, spec: dict, size: int) -> Iterator[pl.DataFrame]:
        """The whole result, one page at a time (never all of it at once)."""
        start = 0
        spec = self.stable(spec)
        while True:
            frame = self.page(spec, start, size).frame
            if frame.height or start == 0:
                yield frame
            if frame.height < size:
                return
            start += size

    def distinct(self, entity: str, path: str, text: str = "", limit: int = SUGGESTIONS) -> tuple[list[str], bool]:
        """The most common values of a text field (containing ``text``), and whether that is
        all of them."""
        frame = self.execute(distinct_spec(entity, path, text, limit + 1)).frame
        values = [v for v in frame[path].to_list() if v is not None]
        return values[:limit], len(values) <= limit


# -- specs derived from a spec -------------------------------------------------------------


def count_spec(spec: dict) -> dict | None:
    """``{"entity", "where", "aggregates": [count]}``: how many rows ``spec`` has before its
    limit and offset; None for a grouped spec."""
    if parse(spec).grouped:
        return None
    counting = {"entity": spec["entity"], "aggregates": [{"fn": "count", "as": COUNT_ALIAS}]}
    if spec.get("where") is not None:
        counting["where"] = copy.deepcopy(spec["where"])
    return counting


def rows_after_paging(spec: dict, counted: int) -> int:
    rows = max(0, counted - (spec.get("offset") or 0))
    return rows if spec.get("limit") is None else min(rows, spec["limit"])


def page_spec(spec: dict, start: int, size: int, after: list | None = None) -> dict:
    """The spec narrowed to rows ``start`` .. ``start + size`` of its own result; with
    ``after`` (the sort keys of row ``start - 1``, ``[]`` for the first page) by keyset.

    The engine orders limited results by the spec's sort, then by id, so pages never overlap;
    a grouped result is ordered by its group keys as well.
    """
    page = copy.deepcopy(spec)
    limit = spec.get("limit")
    if after is None:
        page["offset"] = (spec.get("offset") or 0) + start
    else:  # the keys already stand past the spec's own offset, but on the first page
        page["after"] = list(after)
        page["offset"] = 0 if after else (spec.get("offset") or 0)
    page["limit"] = size if limit is None else max(0, min(size, limit - start))
    parsed = parse(spec)
    if parsed.grouped:
        ordered = {item.field for item in parsed.order_by}
        page["order_by"] = list(page.get("order_by") or []) + [
            key.alias for key in parsed.group_by if key.alias not in ordered
        ]
    return page


def distinct_spec(entity: str, path: str, text: str = "", limit: int = SUGGESTIONS) -> dict:
    rules = [{"field": path, "operator": "notNull"}]
    if text:
        rules.append({"field": path, "operator": "contains", "value": text})
    return {
        "entity": entity,
        "where": {"combinator": "and", "rules": rules},
        "group_by": [path],
        "aggregates": [{"fn": "count", "as": "__rows"}],
        "order_by": [{"field": "__rows", "dir": "desc"}, {"field": path, "dir": "asc"}],
        "limit": limit,
    }


def narrowed(spec: dict, sort: list[tuple[str, bool]], rules: list[dict]) -> dict:
    """The spec with the grid's column sorts (output names, descending?) put first and its
    column filters (rules over output names) added: to ``where`` for plain results (the
    filter names the field behind the column), to ``having`` for grouped ones."""
    if not sort and not rules:
        return spec
    out = copy.deepcopy(spec)
    parsed = parse(spec)
    if sort:
        names = {name for name, _ in sort}
        kept = [
            item
            for item, parsed_item in zip(out.get("order_by") or [], parsed.order_by, strict=True)
            if parsed_item.field not in names
        ]
        out["order_by"] = [{"field": name, "dir": "desc" if desc else "asc"} for name, desc in sort] + kept
    if rules:
        key = "having" if parsed.grouped else "where"
        if not parsed.grouped:
            fields = (
                {item.alias: item.field for item in parsed.select} if parsed.select else default_fields(parsed.entity)
            )
            rules = [{**rule, "field": fields.get(rule["field"], rule["field"])} for rule in rules]
        existing = out.get(key)
        combined = ([existing] if existing and existing.get("rules") else []) + rules
        out[key] = {"combinator": "and", "rules": combined}
    return out
