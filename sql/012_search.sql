-- Search (crm_kernel/services/search.py): accent- and case-insensitive fuzzy matching.
--
-- crm_fold() is lower(unaccent(text)) declared IMMUTABLE, so that indexes can be built on it
-- (unaccent() itself is only STABLE: its dictionary could change; ours is fixed by naming it).
-- The folded names have trigram GIN indexes, searched with word similarity (<%) when the
-- exact words of a search find too little. Each index covers live rows only: search never
-- shows a deleted record, and the partial index matches the query's "deleted_at IS NULL".

CREATE EXTENSION IF NOT EXISTS unaccent;

CREATE FUNCTION crm_fold(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN lower(public.unaccent('public.unaccent'::regdictionary, $1));

CREATE INDEX companies_name_fold_trgm_idx ON companies
    USING gin (crm_fold(name) gin_trgm_ops) WHERE deleted_at IS NULL;
CREATE INDEX contacts_name_fold_trgm_idx ON contacts
    USING gin (crm_fold(first_name || ' ' || last_name) gin_trgm_ops) WHERE deleted_at IS NULL;
CREATE INDEX deals_title_fold_trgm_idx ON deals
    USING gin (crm_fold(title) gin_trgm_ops) WHERE deleted_at IS NULL;
CREATE INDEX activities_subject_fold_trgm_idx ON activities
    USING gin (crm_fold(subject) gin_trgm_ops) WHERE deleted_at IS NULL;
