-- Mail and calendar ingest (crm_kernel/ingest/): messages and events become activities.
--
-- An ingested activity is identified by its source's id: external_source 'email' with the
-- Message-ID, or 'calendar' with the event's UID (plus its RECURRENCE-ID for one instance of a
-- recurring event). activities_external_key (sql/001) makes that pair unique, deleted rows
-- included, so ingesting the same mailbox twice adds nothing even when two runs race. A NULL
-- external_source would slip past that index (NULLs are distinct), so an external id now needs
-- its source.
ALTER TABLE activities ADD CONSTRAINT activities_external_source_check
    CHECK (external_id IS NULL OR external_source IS NOT NULL);

-- The bare host of a company's domain as mail uses it: 'https://WWW.Acme.com:443/about' ->
-- 'acme.com'. Companies are matched to a sender's domain through this, so a domain typed as a
-- website still matches.
CREATE FUNCTION crm_mail_domain(value text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT
    RETURN nullif(
        regexp_replace(
            regexp_replace(
                regexp_replace(lower(btrim(value)), '^[a-z][a-z0-9+.-]*://', ''),  -- scheme
                '[/:?#].*$', ''),                                                 -- port, path
            '^www\.|\.$', '', 'g'),                                               -- www., root dot
        '');

-- Not partial: an index on live rows only would be the planner's cheapest way to any live company
-- and stand in for the better index of queries that have nothing to do with domains.
CREATE INDEX companies_mail_domain_idx ON companies (crm_mail_domain(domain));
