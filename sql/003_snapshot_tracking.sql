-- Change tracking for incremental snapshots (`crm snapshot export --incremental`).
--
-- Which rows changed since a snapshot is decided by transaction visibility, not by clocks: a
-- tracked table stamps every row it inserts or updates with the writing transaction's id
-- (last_xact), and hard deletes and truncations leave a row in row_deletions. An export keeps
-- its pg_current_snapshot() in the manifest; the next one copies only the rows whose writer is
-- not visible in that snapshot, so a transaction that began before it and committed after it
-- is not missed. pg_current_xact_id() names the top-level transaction, also inside savepoints.

CREATE TABLE row_deletions (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_name text NOT NULL,
    row_id     text,  -- the deleted row's primary key as text; NULL: the whole table was truncated
    xact       numeric(20, 0) NOT NULL DEFAULT pg_current_xact_id()::text::numeric,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX row_deletions_xact_idx ON row_deletions (table_name, xact);

CREATE FUNCTION crm_stamp_last_xact() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.last_xact := pg_current_xact_id()::text::numeric;
    RETURN NEW;
END $$;

-- One statement-level trigger per DELETE: bulk deletes record their rows in one INSERT.
CREATE FUNCTION crm_record_deletions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('INSERT INTO row_deletions (table_name, row_id) SELECT %L, %I::text FROM gone',
                   TG_TABLE_NAME, TG_ARGV[0]);
    RETURN NULL;
END $$;

CREATE FUNCTION crm_record_truncation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO row_deletions (table_name) VALUES (TG_TABLE_NAME);
    RETURN NULL;
END $$;

-- Track a table: `SELECT crm_track_changes('my_table')` (it needs a one-column primary key).
-- Untracked tables are exported in full by every snapshot.
CREATE FUNCTION crm_track_changes(target regclass) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    key text;
BEGIN
    SELECT a.attname INTO key
    FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
    WHERE i.indrelid = target AND i.indisprimary AND i.indnkeyatts = 1;
    IF key IS NULL THEN
        RAISE EXCEPTION '% needs a one-column primary key to have its changes tracked', target;
    END IF;
    EXECUTE format('ALTER TABLE %s ADD COLUMN last_xact numeric(20, 0) NOT NULL'
                   ' DEFAULT pg_current_xact_id()::text::numeric', target);
    EXECUTE format('CREATE TRIGGER crm_stamp_last_xact BEFORE INSERT OR UPDATE ON %s'
                   ' FOR EACH ROW EXECUTE FUNCTION crm_stamp_last_xact()', target);
    EXECUTE format('CREATE TRIGGER crm_record_deletions AFTER DELETE ON %s REFERENCING OLD TABLE AS gone'
                   ' FOR EACH STATEMENT EXECUTE FUNCTION crm_record_deletions(%L)', target, key);
    EXECUTE format('CREATE TRIGGER crm_record_truncation AFTER TRUNCATE ON %s'
                   ' FOR EACH STATEMENT EXECUTE FUNCTION crm_record_truncation()', target);
END $$;

SELECT crm_track_changes(t)
FROM unnest('{users,companies,contacts,pipeline_stages,deals,activities,saved_queries,audit_log}'::regclass[]) AS t;
