-- Multiselect custom fields: custom_fields.<key> holds a JSON array of strings, each one of the
-- options the declaration lists. Queries read it as a list of text, like tags (sql/015_tags.sql).
ALTER TABLE custom_field_definitions DROP CONSTRAINT custom_field_definitions_type_check;
ALTER TABLE custom_field_definitions ADD CONSTRAINT custom_field_definitions_type_check
    CHECK (type IN ('text', 'integer', 'number', 'date', 'timestamp', 'boolean', 'multiselect'));
-- No options: SQL NULL or JSON null (how a nullable jsonb field stores None).
ALTER TABLE custom_field_definitions ADD COLUMN options jsonb
    CHECK (jsonb_typeof(options) IN ('array', 'null'));
ALTER TABLE custom_field_definitions ADD CONSTRAINT custom_field_definitions_options_for_type
    CHECK ((type = 'multiselect') = coalesce(jsonb_typeof(options) = 'array', false));

-- A JSON array's elements as text[] (null for anything but an array): how a query reads a
-- multiselect value, so that a record holding {"colours": "red"} reads as null instead of
-- failing the query. DuckDB reads snapshots the same way (crm_kernel/query/compilers/duckdb.py).
CREATE FUNCTION crm_json_texts(value jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN jsonb_typeof(value) = 'array' THEN ARRAY(SELECT jsonb_array_elements_text(value)) END
$$;
