-- Running a saved query counts its use (use_count, last_used_at). Whoever may read a query may
-- run it, but only its owner may change it (sql/017), so a rep or an analyst running a shared
-- query could not count the use themselves: this function does it as the schema's owner, for a
-- query the acting user may read, and changes nothing else (no version, no audit row).
-- Returns whether a use was counted.
CREATE FUNCTION crm_count_saved_query_use(query uuid) RETURNS boolean
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH used AS (
        UPDATE saved_queries SET use_count = use_count + 1, last_used_at = now()
        WHERE id = query AND deleted_at IS NULL AND crm_acting_user() IS NOT NULL
          AND (crm_sees_all() OR owner_id = crm_acting_user() OR shared)
        RETURNING id
    )
    SELECT EXISTS (SELECT FROM used)
$$;
REVOKE EXECUTE ON FUNCTION crm_count_saved_query_use(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_count_saved_query_use(uuid) TO crm_app;
