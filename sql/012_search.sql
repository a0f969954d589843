-- Search (crm_kernel/services/search.py): accent- and case-insensitive fuzzy matching.
--
-- crm_fold() is lower(unaccent(text)) declared IMMUTABLE, so that indexes can be built on it
-- (unaccent() itself is only STABLE: its dictionary could change; ours is fixed by naming it).
--
-- The folded names have GiST trigram indexes, not GIN: GiST answers "the k names nearest this
-- text" (ORDER BY name <->> text LIMIT k) by walking the tree nearest first and stopping after
-- k, so a word found in 100,000 activity subjects costs what a rare one does; a GIN index
-- hands over every match, each then read from the table and scored. Each index covers live
-- rows only: search never shows a deleted record, and the partial index matches the query's
-- "deleted_at IS NULL". A 64-byte signature (the default is 12) keeps the tree's upper levels
-- selective over millions of rows: the nearest 40 of 2.4M activity subjects in ~20 ms.

CREATE EXTENSION IF NOT EXISTS unaccent;

CREATE FUNCTION crm_fold(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN lower(public.unaccent('public.unaccent'::regdictionary, $1));

CREATE INDEX companies_name_fold_trgm_idx ON companies
    USING gist (crm_fold(name) gist_trgm_ops(siglen = 64)) WHERE deleted_at IS NULL;
CREATE INDEX contacts_name_fold_trgm_idx ON contacts
    USING gist (crm_fold(first_name || ' ' || last_name) gist_trgm_ops(siglen = 64)) WHERE deleted_at IS NULL;
CREATE INDEX deals_title_fold_trgm_idx ON deals
    USING gist (crm_fold(title) gist_trgm_ops(siglen = 64)) WHERE deleted_at IS NULL;
CREATE INDEX activities_subject_fold_trgm_idx ON activities
    USING gist (crm_fold(subject) gist_trgm_ops(siglen = 64)) WHERE deleted_at IS NULL;
