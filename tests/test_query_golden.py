"""The compiler without a database: golden SQL for every spec of the corpus, on each dialect, and
every refusal of the invalid corpus.

Input -> expected output, as sqlglot tests its dialects: a change in how a spec renders shows
at once as a diff of ``tests/golden/<dialect>.sql``. After an intended change, write the files
anew with ``CRM_UPDATE_GOLDEN=1 pytest tests/test_query_golden.py`` and read the diff.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from crm_kernel.errors import QuerySpecError
from crm_kernel.query import compile_spec
from crm_kernel.query.schema import Schema

from . import query_data
from .query_corpus import CORPUS, INVALID
from .test_query_rqb import EXPORTS, PARAMETERISED

GOLDEN = Path(__file__).parent / "golden"
DIALECTS = ("postgres", "duckdb")
# The query data's custom field declarations, given offline as the database would give them.
SCHEMA = Schema.from_catalog(
    custom_fields={"companies": {"tier": "text", "seats": "integer", "channels": "multiselect"}}
)
# A multiselect custom field reads its JSON list as text on each engine, then takes the tags rules.
_CHANNELS = "custom_fields.channels"
MULTISELECT = [
    (
        "multiselect selected and has",
        {
            "entity": "companies",
            "select": ["name", _CHANNELS],
            "where": {"rules": [{"field": _CHANNELS, "operator": "contains", "value": "web"}]},
        },
    ),
    (
        "multiselect match mode",
        {
            "entity": "companies",
            "select": ["name"],
            "where": {
                "rules": [
                    {
                        "field": _CHANNELS,
                        "operator": "=",
                        "match": {"mode": "atLeast", "threshold": 2},
                        "value": {"rules": [{"field": "", "operator": "in", "value": ["web", "phone"]}]},
                    }
                ]
            },
        },
    ),
]


def cases() -> list[tuple[str, dict, dict | None]]:
    """(name, spec, params): the corpus, the react-querybuilder forms and the parameter rules."""
    table = [(name, spec, None) for name, spec, _ in CORPUS]
    table += [(f"rqb {p.id}", {"entity": "deals", "select": ["id"], "where": p.values[0]}, None) for p in EXPORTS]
    table += [
        (
            f"parameter {i}: {rule['field']} {rule['operator']}",
            {"entity": "deals", "select": ["id"], "where": {"rules": [{**rule, "valueSource": "parameter"}]}},
            params,
        )
        for i, (rule, params, _) in enumerate(PARAMETERISED)
    ]
    table += [(name, spec, None) for name, spec in MULTISELECT]
    return table


def render(dialect: str) -> str:
    """Every case's SQL, values inline, as one text: ``-- name`` then the SQL."""
    blocks = []
    for name, spec, params in cases():
        sql = compile_spec(spec, dialect, schema=SCHEMA, now=query_data.NOW, params=params).preview()
        blocks.append(f"-- {name}\n{sql.strip()}\n")
    return "\n".join(blocks)


def split(text: str) -> dict[str, str]:
    return dict(re.findall(r"^-- (.*)\n((?:(?!-- ).*\n?)*)", text, re.MULTILINE))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_golden_sql(dialect):
    path = GOLDEN / f"{dialect}.sql"
    rendered = render(dialect)
    if os.environ.get("CRM_UPDATE_GOLDEN") == "1":
        path.write_text(rendered)
    expected = split(path.read_text())
    got = split(rendered)
    assert list(got) == list(expected), "cases added, removed or renamed: write the golden files anew"
    for name in got:
        assert got[name] == expected[name], f"{dialect} SQL of {name!r} changed"


def test_the_golden_files_name_every_case_once():
    names = [name for name, _, _ in cases()]
    assert len(names) == len(set(names)) > 90


@pytest.mark.parametrize(("spec", "path", "words"), [pytest.param(s, p, w, id=i) for i, s, p, w in INVALID])
@pytest.mark.parametrize("dialect", DIALECTS)
def test_refusals_need_no_database(dialect, spec, path, words):
    with pytest.raises(QuerySpecError) as info:
        compile_spec(spec, dialect, schema=SCHEMA, now=query_data.NOW)
    assert info.value.path == path and words in info.value.problem
