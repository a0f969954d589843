"""Search: find companies, contacts, deals and activities from a few words, typos and all.

    crm.search("acme corportion")              # polars DataFrame: entity, id, title, subtitle, score
    crm.search("jose", entities="contacts")     # "José" too: accents and case are ignored
    crm.search("@acme.com", limit=5)            # e-mail fragments find contacts (and the company)

Each entity is searched by its own query, then the results are merged by score (0 to 1,
higher is better). An entity's query gathers a bounded set of candidates, each source its
own indexed query (see :func:`entity_queries`), and scores them:

- the exact words: every word of the text as a prefix in the record's ``search_vector``
  (names, e-mails, titles, descriptions; full-text GIN indexes of sql/002_indexes.sql, which
  look up the longest words only: see :func:`key_tsquery`);
- e-mail addresses and domains by ``ILIKE '%fragment%'`` on their trigram GIN indexes, when
  the text looks like one (holds ``@`` or ``.`` and no space);
- when those find too little (fewer than ``limit`` records in all), names and titles folded by
  ``crm_fold(...)`` (lower case, accents removed; trigram GIN indexes of sql/012_search.sql),
  which forgives typos and accents, in two steps, each one bitmap scan of the entity's index
  (never a ``BitmapOr`` of both, whose recheck would cost every condition on every row either
  scan passed), in one round trip for all entities (two, as activities have their own
  threshold: see :data:`ACTIVITY_WORD_SIMILARITY`):

  - *close*: every word of the text nearly appears in the name (trigram word similarity): a
    key per word, which few names pass, so the scan and its recheck stay small;
  - *similar*, unless a close name is nearly the text (:data:`NEAR`), and only for companies'
    and people's names: the whole text is nearly the name (trigram similarity), which forgives
    what spoils one short word ("wesley simth"), but whose scan passes every name sharing one
    long word with the text ("Wesley ..."), each then rechecked.

  Each step hands on its closest names first (by similarity to the text), so that a name
  behind hundreds of others sharing a common word ("allson works") is still scored.
  The thresholds are set for the transaction only (``set_config(..., true)``, i.e. ``SET LOCAL``).

The score is the trigram similarity of the name to the text (see :func:`_score`), or a fixed
:data:`TEXT_MATCH_SCORE` for a match in a description, more for a longer part of an address.

Plain SQL through ``crm.transaction()``, like every service, so whatever the connection
enforces (row-level security) applies. Deleted records never match: every query and index
keeps to ``deleted_at IS NULL``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

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

# Trigram word similarity each word must reach in a name: low enough for a typo or two in a
# short word ("smiht" reaches 0.5 of "Smith", "frnech" 0.43 of "French"), high enough that
# the index rules most names out.
WORD_SIMILARITY = 0.4
# The same for activities' subjects: millions of rows share a few dozen subjects, so that a
# word sharing a few trigrams with a common one ("renwal": "Re: proposal") passes the index
# in a hundred thousand rows, each then rechecked. A higher threshold leaves those out of
# the index scan and still forgives a letter in a long word ("dicovery" reaches 0.58).
ACTIVITY_WORD_SIMILARITY = 0.55
# Trigram similarity the whole text must reach with a whole name when some word does not:
# "wesley simth" reaches 0.53 of "Wesley Smith", "john simth" 0.47 of "John Smith", while
# "Wesley Jones" stays at 0.39.
SIMILARITY = 0.45
# Similarity to the text of a close name that makes the similar step needless: a letter
# missing in a long word ("andrade netwrks" reaches 0.74 of "Andrade Networks"), while two
# letters swapped in a short one leave less ("wesley simth": 0.67 of "Wesley Sims", whose
# similar names include "Wesley Smith").
NEAR = 0.7
# What a match only by full text (a word of a description) or by e-mail fragment scores:
# below a good name match, above a poor one.
TEXT_MATCH_SCORE = 0.5
# Candidates each source of an entity hands on to be scored, at least: a bound, so that a
# word found in a hundred thousand rows costs what a rare one does.
MIN_CANDIDATES = 40
# Names a fuzzy step ranks to choose its candidates among, in candidates: the closest of a few
# hundred, as many as a common word brings, at the cost of ranking a few hundred.
POOL = 10


@dataclass(frozen=True)
class Target:
    """How one entity is searched and shown. ``name`` is the folded name its trigram index
    (sql/012_search.sql) holds; ``addresses`` the e-mail or domain columns a fragment of an
    address is looked for in (``ILIKE``, trigram GIN indexes of sql/002_indexes.sql), each with
    the parameter it is matched against; ``fulltext`` whether its ``search_vector`` (full-text
    GIN index) is searched too."""

    table: str
    name: str
    title: str
    subtitle: str
    addresses: tuple[tuple[str, str], ...] = ()
    fulltext: bool = False
    then: str = "title"  # the order of equal scores
    # Whether the whole text may be a typo of the whole name (the *similar* step): a person's
    # or a company's name, typed whole. A deal's title or an activity's subject is longer than
    # what is typed to find it, so it is rarely similar as a whole, yet the index would pass
    # every title sharing a company's name with the text, each then rechecked.
    similar: bool = False
    # The word similarity of the close step (see :data:`WORD_SIMILARITY`).
    word_similarity: float = WORD_SIMILARITY


TARGETS = {
    "companies": Target(
        "companies",
        "crm_fold(t.name)",
        "t.name",
        "concat_ws(' · ', t.domain, t.industry)",
        addresses=(("t.domain", "domain_like"),),
        similar=True,
    ),
    "contacts": Target(
        "contacts",
        "crm_fold(t.first_name || ' ' || t.last_name)",
        "t.first_name || ' ' || t.last_name",
        "concat_ws(' · ', t.email, t.job_title, (SELECT name FROM companies WHERE id = t.company_id))",
        addresses=(("t.email", "like"),),
        similar=True,
    ),
    "deals": Target(
        "deals",
        "crm_fold(t.title)",
        "t.title",
        "concat_ws(' · ', (SELECT name FROM companies WHERE id = t.company_id),"
        " (SELECT name FROM pipeline_stages WHERE id = t.stage_id),"
        " to_char(t.value, 'FM999,999,999,990') || ' ' || t.currency)",
        fulltext=True,
    ),
    "activities": Target(
        "activities",
        "crm_fold(t.subject)",
        "t.subject",
        "concat_ws(' · ', initcap(replace(t.type::text, '_', ' ')), replace(t.status::text, '_', ' '),"
        " to_char(coalesce(t.completed_at, t.due_at, t.created_at), 'YYYY-MM-DD'),"
        " (SELECT title FROM deals WHERE id = t.deal_id), (SELECT name FROM companies WHERE id = t.company_id))",
        fulltext=True,
        then="t.created_at DESC",
        word_similarity=ACTIVITY_WORD_SIMILARITY,
    ),
}


def _close(expr: str, words: int) -> str:
    """Every word of the text nearly appears in ``expr`` (trigram word similarity above its
    threshold): one GIN index scan with a key per word."""
    return " AND ".join(f"crm_fold(:w{i}) <% {expr}" for i in range(words))


def _similar(expr: str) -> str:
    """The whole text is nearly ``expr`` (similarity above its threshold), which forgives what
    spoils one short word, such as two letters swapped ("wesley simth")."""
    return f"crm_fold(:q) % {expr}"


def _score(expr: str, words: int) -> str:
    """How well the name matches, 0 to 1: the words' mean word similarity (is each word in the
    name, nearly?) weighed twice against the whole text's similarity (is the name that text,
    or much longer?), so that "Acme" ranks the company called "Acme" above "Acme Robotics"."""
    mean = " + ".join(f"word_similarity(crm_fold(:w{i}), {expr})" for i in range(words))
    return f"(2 * ({mean}) / {words} + similarity(crm_fold(:q), {expr})) / 3"


def _closest(t: Target, live: str, match: str) -> str:
    """The ids of the ``:k`` names most similar to the text (``near``, their similarity) among
    the first ``:pool`` that ``match``: the closest first, as a common word of the text
    ("works") makes hundreds of names match, yet never more than ``:pool`` rechecked and
    sorted, as a typo of a very common word ("renwal") matches tens of thousands of titles."""
    return (
        f"SELECT s.id, similarity(crm_fold(:q), s.name) AS near"
        f" FROM (SELECT t.id, {t.name} AS name {live} AND {match} LIMIT :pool) s"
        " ORDER BY near DESC LIMIT :k"
    )


class Queries(NamedTuple):
    """One entity's statements: ``exact``, ``close`` and ``similar`` select candidate ids
    (``close`` and ``similar`` are None for an address), ``score`` scores the candidates
    ``:ids`` and keeps the best ``:n``."""

    exact: str
    close: str | None
    similar: str | None
    score: str

    @property
    def fuzzy(self) -> tuple[str, ...]:
        """The fuzzy steps, in the order they are tried."""
        return tuple(q for q in (self.close, self.similar) if q is not None)


def entity_queries(entity: str, words: int, *, address: bool = False) -> Queries | None:
    """The statements searching ``entity`` for a text of ``words`` words (parameters: see
    :func:`query_params`); ``address``: the text looks like a piece of an e-mail address or a
    domain, looked for only where the entity has addresses (None elsewhere).

    Candidates come from sources, each its own indexed query bounded by ``:k``: first the
    exact words (every word of the text as a prefix, full-text GIN index) or the address
    fragment (trigram GIN index); only when those found fewer than ``:n`` records in all the
    entities searched, the fuzzy match on the folded name (trigram GIN index), which forgives
    typos and accents: first the ``close`` names, then, unless one of them is nearly the text,
    the ``similar`` ones. A common word thus costs one early-stopping scan, and the fuzzy
    steps, whose cost grows with the number of names their index scan passes, run for the
    rare texts that need them, the costlier one the rarer. The candidates are then scored and
    the best ``:n`` kept."""
    t = TARGETS[entity]
    live = f"FROM {t.table} t WHERE t.deleted_at IS NULL"
    scores = [_score(t.name, words)]
    if not address:  # the words of an address ("gmail", "com") are no words of a text
        # The index looks up the longest words only (see :func:`key_tsquery`); every word is
        # then checked on the rows found, by the function behind @@, which no index matches.
        exact = [
            f"SELECT t.id {live} AND t.search_vector @@ to_tsquery('simple', :tsq_key)"
            f" AND ts_match_vq(t.search_vector, to_tsquery('simple', :tsq)) LIMIT :k"
        ]
        scores.append(f"CASE WHEN t.search_vector @@ to_tsquery('simple', :tsq) THEN {TEXT_MATCH_SCORE} END")
    elif not t.addresses:
        return None
    else:
        exact = []
        for column, param in t.addresses:
            exact.append(f"SELECT t.id {live} AND {column} ILIKE :{param} LIMIT :k")
            # a longer part of the address, a better match: the whole address scores 1
            scores.append(
                f"CASE WHEN {column} ILIKE :{param} THEN {TEXT_MATCH_SCORE}"
                f" + {1 - TEXT_MATCH_SCORE} * length(:q) / greatest(length({column}), length(:q)) END"
            )
    # An address is matched as it is typed: its words are no names to guess at.
    close = None if address else _closest(t, live, _close(t.name, words))
    similar = _closest(t, live, _similar(t.name)) if t.similar and not address else None
    score = f"""
    SELECT t.id, {t.title} AS title, {t.subtitle} AS subtitle, greatest({", ".join(scores)}) AS score
    FROM {t.table} t
    WHERE t.id = ANY(:ids) AND t.deleted_at IS NULL
    ORDER BY score DESC, {t.then}, t.id
    LIMIT :n"""
    return Queries(" UNION ALL ".join(f"({source})" for source in exact), close, similar, score)


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
        raise ValidationError(
            {"entities": f"unknown {', '.join(map(repr, unknown))}; search {', '.join(ENTITIES)}"}, "search"
        )
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


KEY_WORDS = 2  # words of a text the full-text index looks up


def key_tsquery(text: str) -> str:
    """The :data:`KEY_WORDS` longest words of ``text`` as prefixes: what the full-text index
    looks up. A short word ("inc", "gmbh") is a prefix of words in a large share of the rows,
    all of whose entries the index would read (a prefix is looked up in full before any other
    word narrows it), and it narrows the longer words' rows little."""
    words = sorted(_WORD.findall(text.lower()), key=len, reverse=True)[:KEY_WORDS]
    return prefix_tsquery(" ".join(words))


def _like(fragment: str) -> str:
    return "%" + re.sub(r"([\\%_])", r"\\\1", fragment) + "%"


def looks_like_address(text: str) -> bool:
    """An e-mail address or a domain, or a piece of one: ``smith@acme``, ``@acme.com``."""
    return " " not in text and ("@" in text or "." in text)


def query_params(text: str, words: list[str], limit: int) -> dict:
    """The bound parameters of :func:`entity_queries`' statements."""
    domain = text.rsplit("@", 1)[-1] if "@" in text else text
    return {
        "q": text,
        **{f"w{i}": w for i, w in enumerate(words)},
        "like": _like(text),
        "domain_like": _like(domain),
        "tsq": prefix_tsquery(text),
        "tsq_key": key_tsquery(text),
        "n": limit,
        "k": max(MIN_CANDIDATES, 2 * limit),
        "pool": POOL * max(MIN_CANDIDATES, 2 * limit),
    }


def candidate_ids(conn: sa.Connection, statements: dict[str, str], params: dict, near: bool = False) -> dict:
    """Each entity's candidate ids by its statement (``statements``: entity to statement), all
    in one round trip: each statement stays a subquery planned as it would be alone. With
    ``near``, the statements are fuzzy steps' (:func:`_closest`) and each id comes with its
    similarity to the text: entity to {id: similarity}."""
    found = {name: {} if near else [] for name in statements}
    union = " UNION ALL ".join(
        f"(SELECT '{name}'::text AS entity, s.id, {'s.near' if near else 'NULL::real'} FROM ({sql}) s)"
        for name, sql in statements.items()
    )
    if union:
        for entity, id_, similarity in conn.execute(sa.text(union), params):
            if near:
                found[entity].setdefault(id_, similarity)
            else:
                found[entity].append(id_)
    return found


def fuzzy_ids(conn: sa.Connection, statements: dict[str, str], params: dict) -> dict[str, dict]:
    """Each entity's candidates by one fuzzy step (``statements``: entity to statement), each
    with its similarity to the text (entity to {id: similarity}), always through the trigram
    GIN index: the planner guesses that 1% of rows are similar to any text, and with a LIMIT
    it would then read the table until it found ``:k`` of them, which for a rare text means
    all of it. Bitmap scans only, and each entity's word similarity threshold, inside a
    savepoint that takes the settings back."""
    thresholds = {TARGETS[name].word_similarity for name in statements}
    found = {}
    savepoint = conn.begin_nested()
    try:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = off")
        for threshold in sorted(thresholds):  # one round trip per entities' threshold
            conn.exec_driver_sql(f"SET LOCAL pg_trgm.word_similarity_threshold = {float(threshold)}")
            group = {name: sql for name, sql in statements.items() if TARGETS[name].word_similarity == threshold}
            found.update(candidate_ids(conn, group, params, near=True))
    finally:
        savepoint.rollback()
    return {name: found[name] for name in statements}


def set_thresholds(conn: sa.Connection) -> None:
    """The trigram thresholds, for this transaction only (``SET LOCAL``)."""
    conn.execute(
        sa.text(
            "SELECT set_config('pg_trgm.word_similarity_threshold', :w, true),"
            " set_config('pg_trgm.similarity_threshold', :s, true)"
        ),
        {"w": str(WORD_SIMILARITY), "s": str(SIMILARITY)},
    )


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
    address = looks_like_address(text)
    rows = []
    with crm.transaction() as conn:
        set_thresholds(conn)
        queries = {name: q for name in names if (q := entity_queries(name, len(words), address=address))}
        exact = candidate_ids(conn, {name: q.exact for name, q in queries.items()}, params)
        found = {name: dict.fromkeys(ids) for name, ids in exact.items()}
        # Typos are forgiven when the exact words found too little: a fuzzy match costs more.
        if sum(map(len, found.values())) < limit:
            close = fuzzy_ids(conn, {name: q.close for name, q in queries.items() if q.close}, params)
            for name, near in close.items():
                found[name].update(dict.fromkeys(near))
            similar = {name: q.similar for name, q in queries.items() if q.similar}
            # The similar names, unless a close name is nearly the text: then the text is no
            # typo of another name. Not "unless the close names are enough": they may be many
            # yet miss the one whose short word a typo spoiled ("grace blel": Grace Blair,
            # Grace Blevins, ..., and Grace Bell only among the similar).
            nearest = max((v for near in close.values() for v in near.values()), default=0)
            if similar and nearest < NEAR and words != [text]:  # one word: its similar names are close
                for name, near in fuzzy_ids(conn, similar, params).items():
                    found[name].update(dict.fromkeys(near))
        for name, q in queries.items():
            if found[name]:
                for row in conn.execute(sa.text(q.score), {**params, "ids": list(found[name])}):
                    rows.append((name, str(row.id), row.title, row.subtitle or "", round(float(row.score), 4)))
    order = {name: i for i, name in enumerate(ENTITIES)}
    rows.sort(key=lambda r: (-r[4], order[r[0]], r[2].lower()))
    return pl.DataFrame(rows[:limit], schema=schema, orient="row")
