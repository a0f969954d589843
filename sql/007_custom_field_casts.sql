-- Reading custom fields safely: a query casts custom_fields->>key to the key's declared type,
-- and one record holding {"seats": "many"} must not fail every query that names seats. The query
-- compiler first checks the text's form with a regular expression (the same test on PostgreSQL
-- and DuckDB, crm_kernel/query/compilers/base.py); these functions catch what a form cannot,
-- such as 30 February, and read it as null. DuckDB's TRY_CAST does the same on snapshots.

CREATE FUNCTION crm_try_date(value text) RETURNS date
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN value::date;
EXCEPTION WHEN data_exception THEN
    RETURN NULL;
END
$$;

CREATE FUNCTION crm_try_timestamptz(value text) RETURNS timestamptz
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN value::timestamptz;
EXCEPTION WHEN data_exception THEN
    RETURN NULL;
END
$$;
