-- Custom fields: extra keys in an entity's custom_fields jsonb, declared with a type so that
-- queries can filter, sort and group on them (custom_fields.<key>) like on built-in fields.

CREATE TABLE custom_field_definitions (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    entity        text NOT NULL,
    key           text NOT NULL CHECK (key ~ '^[a-z][a-z0-9_]*$'),
    type          text NOT NULL CHECK (type IN ('text', 'integer', 'number', 'date', 'timestamp', 'boolean')),
    label         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    created_by    uuid REFERENCES users (id),
    updated_by    uuid REFERENCES users (id),
    deleted_at    timestamptz,
    version       integer NOT NULL DEFAULT 1,
    custom_fields jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE UNIQUE INDEX custom_field_definitions_key ON custom_field_definitions (entity, key) WHERE deleted_at IS NULL;

-- Incremental snapshots copy only its changed rows (sql/003_snapshot_tracking.sql).
SELECT crm_track_changes('custom_field_definitions');
