-- Change tracking (sql/003): a primary-key UPDATE also removes the old key.
--
-- An UPDATE that changes a row's key stamps the row under its new key, but the previous
-- snapshot holds it under the old one, which no deletion recorded: an incremental export kept
-- both. Recording the old key as deleted makes the next export drop it (a key that still exists,
-- or comes back, is copied again anyway, as every changed row is). The trigger fires only when
-- the key actually changes, so ordinary updates cost nothing more.

CREATE FUNCTION crm_record_key_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('INSERT INTO row_deletions (table_name, row_id) SELECT %L, ($1).%I::text',
                   TG_TABLE_NAME, TG_ARGV[0]) USING OLD;
    RETURN NULL;
END $$;

CREATE FUNCTION crm_track_key_changes(target regclass, key text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TRIGGER crm_record_key_change AFTER UPDATE OF %I ON %s FOR EACH ROW'
                   ' WHEN (OLD.%I IS DISTINCT FROM NEW.%I) EXECUTE FUNCTION crm_record_key_change(%L)',
                   key, target, key, key, key);
END $$;

-- Track a table: `SELECT crm_track_changes('my_table')` (it needs a one-column primary key).
-- Untracked tables are exported in full by every snapshot.
CREATE OR REPLACE FUNCTION crm_track_changes(target regclass) RETURNS void LANGUAGE plpgsql AS $$
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
    PERFORM crm_track_key_changes(target, key);
END $$;

-- Every table tracked so far gets the new trigger.
SELECT crm_track_key_changes(g.tgrelid::regclass, a.attname)
FROM pg_trigger g
JOIN pg_constraint k ON k.conrelid = g.tgrelid AND k.contype = 'p' AND cardinality(k.conkey) = 1
JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
WHERE g.tgname = 'crm_stamp_last_xact';
