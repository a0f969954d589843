"""Search: find companies, contacts, deals and activities from a few words, typos and all.

    crm.search("acme corportion")              # polars DataFrame: entity, id, title, subtitle, score
    crm.search("jose", entities="contacts")     # "José" too: accents and case are ignored
    crm.search("@acme.com", limit=5)            # e-mail fragments find contacts (and the company)

Each entity is searched by its own query on its own indexes, then the results are merged by
score (0 to 1, higher is better):

- names and titles by trigram word similarity on ``crm_fold(...)`` (lower case, accents
  removed; GIN indexes of sql/012_search.sql), which forgives typos and finds a word inside
  a longer name; the thresholds are set for the transaction only (``set_config(..., true)``,
  i.e. ``SET LOCAL``);
- words anywhere in a deal's or activity's text (descriptions too) by full-text search on
  ``search_vector`` (GIN indexes of sql/002_indexes.sql), as prefixes;
- e-mail addresses and domains by ``ILIKE '%fragment%'`` on their trigram indexes, when the
  text looks like one (holds ``@`` or ``.``).

Plain SQL through ``crm.transaction()``, like every service, so whatever the connection
enforces (row-level security) applies. Deleted records never match: every query and index
keeps to ``deleted_at IS NULL``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ..errors import ValidationError

if TYPE_CHECKING:
    import polars as pl

    from ..client import CRM

ENTITIES = ("companies", "contacts", "deals", "activities")  # also the order of equal scores
MAX_TEXT = 200  # characters: longer is not a search but a paste gone wrong
MIN_TEXT = 2  # characters (spaces aside): one letter matches everything, so it finds nothing
MAX_LIMIT = 200
COLUMNS = ("entity", "id", "title", "subtitle", "score")

# Trigram word similarity a name must reach: low enough for two typos in a short name
# ("jon smiht" reaches 0.5 of "John Smith"), high enough that the GIN index rules most rows
# out before any is read.
WORD_SIMILARITY = 0.45
# What a match only by full-text (a word of a description) or by e-mail fragment scores:
# below a good name match, above a poor one.
TEXT_MATCH_SCORE = 0.5


def _match(expr: str, words: int) -> str:
    """Every word of the text nearly appears in ``expr`` (trigram word similarity above the
    threshold): one GIN index scan with a key per word, each key ruling rows out."""
    return "(" + " AND ".join(f"crm_fold(:w{i}) <% {expr}" for i in range(words)) + ")"


def _score(expr: str, words: int) -> str:
    """How well the name matches, 0 to 1: the words' mean word similarity (is each word in the
    name, nearly?) weighed twice against the whole text's similarity (is the name that text,
    or much longer?), so that "Acme" ranks the company called "Acme" above "Acme Robotics"."""
    mean = " + ".join(f"word_similarity(crm_fold(:w{i}), {expr})" for i in range(words))
    return f"((2 * ({mean}) / {words} + similarity(crm_fold(:q), {expr})) / 3)"


# Each entity's query: {match} is the trigram condition on its name (NAMES), {score} its
# score; see query_params() for the bound parameters.
BRANCHES = {
    "companies": """
        SELECT c.id, c.name AS title, concat_ws(' · ', c.domain, c.industry) AS subtitle,
               greatest({score},
                        CASE WHEN :email AND (c.domain ILIKE :domain_like OR c.email ILIKE :like)
                             THEN {text_score} END) AS score
        FROM companies c
        WHERE c.deleted_at IS NULL
          AND ({match}
               OR (:email AND (c.domain ILIKE :domain_like OR c.email ILIKE :like)))
        ORDER BY score DESC, c.name, c.id
        LIMIT :n""",
    "contacts": """
        SELECT p.id, p.first_name || ' ' || p.last_name AS title,
               concat_ws(' · ', p.email, p.job_title,
                         (SELECT name FROM companies WHERE id = p.company_id)) AS subtitle,
               greatest({score},
                        CASE WHEN :email AND p.email ILIKE :like
                             THEN {text_score} + 0.5 * length(:q) / greatest(length(p.email), 1) END) AS score
        FROM contacts p
        WHERE p.deleted_at IS NULL
          AND ({match}
               OR (:email AND p.email ILIKE :like))
        ORDER BY score DESC, title, p.id
        LIMIT :n""",
    "deals": """
        SELECT d.id, d.title,
               concat_ws(' · ', (SELECT name FROM companies WHERE id = d.company_id),
                         (SELECT name FROM pipeline_stages WHERE id = d.stage_id),
                         to_char(d.value, 'FM999,999,999,990') || ' ' || d.currency) AS subtitle,
               greatest({score},
                        CASE WHEN d.search_vector @@ to_tsquery('simple', :tsq) THEN {text_score} END) AS score
        FROM deals d
        WHERE d.deleted_at IS NULL
          AND ({match} OR d.search_vector @@ to_tsquery('simple', :tsq))
        ORDER BY score DESC, d.title, d.id
        LIMIT :n""",
    "activities": """
        SELECT a.id, a.subject AS title,
               concat_ws(' · ', a.type::text, a.status::text,
                         to_char(coalesce(a.completed_at, a.due_at, a.created_at), 'YYYY-MM-DD'),
                         (SELECT title FROM deals WHERE id = a.deal_id),
                         (SELECT name FROM companies WHERE id = a.company_id)) AS subtitle,
               greatest({score},
                        CASE WHEN a.search_vector @@ to_tsquery('simple', :tsq) THEN {text_score} END) AS score
        FROM activities a
        WHERE a.deleted_at IS NULL
          AND ({match} OR a.search_vector @@ to_tsquery('simple', :tsq))
        ORDER BY score DESC, a.created_at DESC, a.id
        LIMIT :n""",
}
# The name each entity is found by, as its trigram index (sql/012_search.sql) has it.
NAMES = {
    "companies": "crm_fold(c.name)",
    "contacts": "crm_fold(p.first_name || ' ' || p.last_name)",
    "deals": "crm_fold(d.title)",
    "activities": "crm_fold(a.subject)",
}


def branch_sql(entity: str, words: int) -> str:
    """The SQL searching ``entity`` for a text of ``words`` words (see :func:`query_params`)."""
    name = NAMES[entity]
    return BRANCHES[entity].format(match=_match(name, words), score=_score(name, words),
                                   text_score=TEXT_MATCH_SCORE)


def clean_text(text) -> str:
    """The text to search for, spaces collapsed; refuses what cannot be a search."""
    if not isinstance(text, str):
        raise ValidationError({"text": f"must be text, not {type(text).__name__}"}, "search")
    if "\x00" in text:
        raise ValidationError({"text": "contains a NUL character"}, "search")
    text = " ".join(text.split())
    if len(text) > MAX_TEXT:
        raise ValidationError({"text": f"is {len(text)} characters long; at most {MAX_TEXT} are searched"}, "search")
    return text


def clean_entities(entities) -> tuple[str, ...]:
    """``None`` (all), one entity name or several, in :data:`ENTITIES` order."""
    if entities is None:
        return ENTITIES
    names = [entities] if isinstance(entities, str) else entities
    if not isinstance(names, Iterable) or not all(isinstance(n, str) for n in names):
        raise ValidationError({"entities": f"must be entity names, not {entities!r}"}, "search")
    names = set(names)
    unknown = sorted(names - set(ENTITIES))
    if unknown:
        raise ValidationError({"entities": f"unknown {', '.join(map(repr, unknown))}; "
                                           f"search {', '.join(ENTITIES)}"}, "search")
    if not names:
        raise ValidationError({"entities": f"name at least one of {', '.join(ENTITIES)}"}, "search")
    return tuple(e for e in ENTITIES if e in names)


def clean_limit(limit) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError({"limit": f"must be a whole number from 1 to {MAX_LIMIT}, not {limit!r}"}, "search")
    return limit


_WORD = re.compile(r"\w+")
MAX_WORDS = 6  # words that must each match a name; more would only narrow it further


def words_of(text: str) -> list[str]:
    """The words a name must contain (nearly): letters and digits, two or more of them (one
    letter is in every other name), at most :data:`MAX_WORDS`."""
    return [w for w in _WORD.findall(text) if len(w) > 1][:MAX_WORDS]


def prefix_tsquery(text: str) -> str:
    """Every word of ``text`` as a prefix, all required: ``'acme':* & 'renew':*``. Only
    letters and digits reach the tsquery, so no text can break its syntax."""
    return " & ".join(f"'{w}':*" for w in _WORD.findall(text.lower()))


def _like(fragment: str) -> str:
    return "%" + re.sub(r"([\\%_])", r"\\\1", fragment) + "%"


def looks_like_address(text: str) -> bool:
    """An e-mail address or a domain, or a piece of one: ``smith@acme``, ``@acme.com``."""
    return " " not in text and ("@" in text or "." in text)


def query_params(text: str, words: list[str], limit: int) -> dict:
    email = looks_like_address(text)
    domain = text.rsplit("@", 1)[-1] if email else text
    return {"q": text, **{f"w{i}": w for i, w in enumerate(words)}, "like": _like(text),
            "domain_like": _like(domain), "email": email, "tsq": prefix_tsquery(text), "n": limit}


def search(crm: CRM, text, entities=None, limit: int = 20) -> pl.DataFrame:
    """The records best matching ``text``, best first: see the module's docstring."""
    import polars as pl

    text = clean_text(text)
    names = clean_entities(entities)
    limit = clean_limit(limit)
    schema = {"entity": pl.String, "id": pl.String, "title": pl.String, "subtitle": pl.String, "score": pl.Float64}
    words = words_of(text)
    if len(text.replace(" ", "")) < MIN_TEXT or not words:
        return pl.DataFrame(schema=schema)
    params = query_params(text, words, limit)
    rows = []
    with crm.transaction() as conn:
        conn.execute(sa.text("SELECT set_config('pg_trgm.word_similarity_threshold', :t, true)"),
                     {"t": str(WORD_SIMILARITY)})
        for name in names:
            for row in conn.execute(sa.text(branch_sql(name, len(words))), params):
                rows.append((name, str(row.id), row.title, row.subtitle or "", round(float(row.score), 4)))
    order = {name: i for i, name in enumerate(ENTITIES)}
    rows.sort(key=lambda r: (-r[4], order[r[0]], r[2].lower()))
    return pl.DataFrame(rows[:limit], schema=schema, orient="row")
