-- Row-level security: what each user may read and write, enforced by PostgreSQL itself.
--
-- The schema's owner (the role that runs migrations) is not bound by these policies. Apps,
-- notebooks and per-user logins connect as members of the NOLOGIN role crm_app (NOSUPERUSER,
-- NOBYPASSRLS), whose rows are filtered for the acting user:
-- * a shared service login (crm_service) acts as the user named by the transaction setting
--   crm.user_id, which the library sets at every transaction's start;
-- * a per-user login (`crm users db-credentials`, a member of crm_personal_login) always acts
--   as the user crm_user_logins maps it to: setting crm.user_id changes nothing for it.
-- No acting user (or an inactive one) sees nothing.
--
-- Policy functions are SECURITY DEFINER (they read users and teams as the owner, so the
-- policies on those tables do not recurse) with a pinned search_path. Policies call them in
-- scalar subqueries, (SELECT crm_sees_all()), which PostgreSQL evaluates once per statement
-- instead of once per row.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'crm_app') THEN
        CREATE ROLE crm_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'crm_personal_login') THEN
        CREATE ROLE crm_personal_login NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END $$;

-- Who acts: a per-user login's mapped user, else the service's crm.user_id; only while active.
CREATE FUNCTION crm_acting_user() RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT u.id FROM users u
    WHERE u.deleted_at IS NULL AND u.active AND u.id = CASE
        WHEN EXISTS (SELECT FROM crm_user_logins l WHERE l.login = session_user::text)
          OR EXISTS (SELECT FROM pg_auth_members m
                     WHERE m.roleid = 'crm_personal_login'::regrole
                       AND m.member = (SELECT oid FROM pg_roles WHERE rolname = session_user))
            THEN (SELECT l.user_id FROM crm_user_logins l WHERE l.login = session_user::text)
        WHEN current_setting('crm.user_id', true) ~ '^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$'
            THEN current_setting('crm.user_id', true)::uuid
    END
$$;

CREATE FUNCTION crm_acting_role() RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT role::text FROM users WHERE id = crm_acting_user()
$$;

-- The user a per-user login acts as (NULL for any other login): how the library learns it.
CREATE FUNCTION crm_login_user() RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT user_id FROM crm_user_logins WHERE login = session_user::text
$$;

-- A user by e-mail or id, readable before anyone acts (the library resolves CRM_USER with it).
CREATE FUNCTION crm_find_user(key text) RETURNS TABLE (id uuid, email text, role text, usable boolean)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT u.id, u.email, u.role::text, u.deleted_at IS NULL AND u.active FROM users u
    WHERE lower(u.email) = lower(key) OR u.id::text = lower(key)
$$;

CREATE FUNCTION crm_sees_all() RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT coalesce(crm_acting_role() IN ('admin', 'analyst'), false)
$$;

CREATE FUNCTION crm_writes_all() RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT coalesce(crm_acting_role() = 'admin', false)
$$;

-- Owners whose records the acting user sees: themselves, and for a manager the members of
-- the teams they manage.
CREATE FUNCTION crm_visible_owners() RETURNS uuid[]
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH me AS (SELECT crm_acting_user() AS id, crm_acting_role() AS role)
    SELECT coalesce(array_agg(DISTINCT owner), '{}') FROM (
        SELECT id AS owner FROM me WHERE id IS NOT NULL
        UNION
        SELECT m.user_id FROM me JOIN teams t ON t.manager_id = me.id JOIN team_members m ON m.team_id = t.id
        WHERE me.role IN ('manager', 'admin')
    ) owners
$$;

-- Owners whose records the acting user may change: those they see, except for an analyst.
CREATE FUNCTION crm_writable_owners() RETURNS uuid[]
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT CASE WHEN crm_acting_role() = 'analyst' THEN '{}'::uuid[] ELSE crm_visible_owners() END
$$;

-- Owners the acting user may give a record to: those they may change, and the members and
-- managers of every team they belong to (a rep hands a deal to a teammate, not further).
CREATE FUNCTION crm_assignable_owners() RETURNS uuid[]
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH me AS (SELECT crm_acting_user() AS id, crm_acting_role() AS role),
         mine AS (SELECT m.team_id FROM me JOIN team_members m ON m.user_id = me.id)
    SELECT CASE WHEN (SELECT role FROM me) = 'analyst' THEN '{}'::uuid[] ELSE
        coalesce(array_agg(DISTINCT owner), '{}') END FROM (
        SELECT unnest(crm_writable_owners()) AS owner
        UNION SELECT m.user_id FROM team_members m JOIN mine USING (team_id)
        UNION SELECT t.manager_id FROM teams t JOIN mine ON mine.team_id = t.id WHERE t.manager_id IS NOT NULL
    ) owners
$$;

CREATE FUNCTION crm_can_see_owner(owner uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT crm_sees_all() OR coalesce(owner = ANY (crm_visible_owners()), false)
$$;

CREATE FUNCTION crm_can_write_owner(owner uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT crm_writes_all() OR coalesce(owner = ANY (crm_writable_owners()), false)
$$;

-- The writing transaction's id once it has one: a row written in this transaction stays
-- readable to its writer until the commit (INSERT/UPDATE ... RETURNING of a deal a rep hands
-- to a teammate), though not afterwards.
CREATE FUNCTION crm_current_xact() RETURNS numeric
    LANGUAGE sql VOLATILE AS $$ SELECT pg_current_xact_id_if_assigned()::text::numeric $$;

-- Change tracking writes row_deletions whoever deletes (sql/003, sql/006).
ALTER FUNCTION crm_record_deletions() SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION crm_record_truncation() SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION crm_record_key_change() SECURITY DEFINER SET search_path = public, pg_temp;

-- Protect a table: `SELECT crm_protect('my_table', 'reference')`. Rules:
--   owned     owner_id: reps their own rows, managers their teams', analysts read all, admins all
--   shared    every acting user reads; writing as for owned
--   reference every acting user reads; admins write
--   admin     admins only
--   internal  nobody through crm_app (reached only through SECURITY DEFINER functions)
-- A table that is never protected is not granted to crm_app at all, so it fails closed.
CREATE FUNCTION crm_protect(target regclass, rule text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    acting  constant text := '(SELECT crm_acting_user()) IS NOT NULL';
    admin   constant text := '(SELECT crm_writes_all())';
    sees    constant text := '(SELECT crm_sees_all()) OR owner_id = ANY ((SELECT crm_visible_owners())::uuid[])';
    writes  constant text := '(SELECT crm_writes_all()) OR owner_id = ANY ((SELECT crm_writable_owners())::uuid[])';
    assigns constant text := '(SELECT crm_writes_all()) OR owner_id = ANY ((SELECT crm_assignable_owners())::uuid[])';
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', target);
    IF rule = 'internal' THEN
        EXECUTE format('REVOKE ALL ON %s FROM crm_app', target);
        RETURN;
    END IF;
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO crm_app', target);
    IF rule = 'owned' THEN
        -- last_xact (sql/003): the writer's own transaction still reads what it just wrote.
        EXECUTE format('CREATE POLICY crm_read ON %s FOR SELECT TO crm_app USING (%s OR last_xact = (SELECT crm_current_xact()))', target, sees);
    ELSIF rule IN ('shared', 'reference') THEN
        EXECUTE format('CREATE POLICY crm_read ON %s FOR SELECT TO crm_app USING (%s)', target, acting);
    ELSIF rule <> 'admin' THEN
        RAISE EXCEPTION 'unknown protection rule %', rule;
    END IF;
    IF rule IN ('owned', 'shared') THEN
        EXECUTE format('CREATE POLICY crm_insert ON %s FOR INSERT TO crm_app WITH CHECK (%s)', target, assigns);
        EXECUTE format('CREATE POLICY crm_update ON %s FOR UPDATE TO crm_app USING (%s) WITH CHECK (%s)', target, writes, assigns);
        EXECUTE format('CREATE POLICY crm_delete ON %s FOR DELETE TO crm_app USING (%s)', target, writes);
    ELSE
        EXECUTE format('CREATE POLICY crm_admin ON %s FOR ALL TO crm_app USING (%s) WITH CHECK (%s)', target, admin, admin);
    END IF;
END $$;

SELECT crm_protect(t, 'owned') FROM unnest('{deals,activities}'::regclass[]) AS t;
SELECT crm_protect(t, 'shared') FROM unnest('{companies,contacts}'::regclass[]) AS t;
SELECT crm_protect(t, 'reference') FROM unnest(
    '{users,teams,team_members,pipeline_stages,products,custom_field_definitions,crm_settings,exchange_rates}'::regclass[]) AS t;
SELECT crm_protect('crm_user_logins', 'internal');

-- Saved queries: your own and shared ones; only yours (or an admin) to change.
SELECT crm_protect('saved_queries', 'admin');
CREATE POLICY crm_read ON saved_queries FOR SELECT TO crm_app
    USING ((SELECT crm_sees_all()) OR owner_id = (SELECT crm_acting_user()) OR (shared AND (SELECT crm_acting_user()) IS NOT NULL));
CREATE POLICY crm_own ON saved_queries FOR ALL TO crm_app
    USING (owner_id = (SELECT crm_acting_user())) WITH CHECK (owner_id = (SELECT crm_acting_user()));

-- Sign-in tokens: admins manage them; a user sees their own.
SELECT crm_protect('sign_in_tokens', 'admin');
CREATE POLICY crm_read ON sign_in_tokens FOR SELECT TO crm_app USING (user_id = (SELECT crm_acting_user()));

-- The audit log: append-only for crm_app, in the acting user's name; a row is readable when
-- its record is (or by whoever reads everything), and by the user who made it.
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
GRANT SELECT, INSERT ON audit_log TO crm_app;
CREATE POLICY crm_insert ON audit_log FOR INSERT TO crm_app WITH CHECK (user_id = (SELECT crm_acting_user()));
CREATE POLICY crm_read ON audit_log FOR SELECT TO crm_app USING (
    (SELECT crm_sees_all()) OR user_id = (SELECT crm_acting_user())
    OR (entity IN ('companies', 'contacts', 'users', 'teams', 'pipeline_stages', 'products', 'custom_field_definitions')
        AND (SELECT crm_acting_user()) IS NOT NULL)
    OR (entity = 'deals' AND EXISTS (SELECT FROM deals d WHERE d.id = audit_log.entity_id))
    OR (entity = 'activities' AND EXISTS (SELECT FROM activities a WHERE a.id = audit_log.entity_id))
    OR (entity = 'saved_queries' AND EXISTS (SELECT FROM saved_queries s WHERE s.id = audit_log.entity_id)));

-- Deletions are recorded by the SECURITY DEFINER triggers; snapshots read them.
ALTER TABLE row_deletions ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON row_deletions TO crm_app;
CREATE POLICY crm_read ON row_deletions FOR SELECT TO crm_app USING ((SELECT crm_acting_user()) IS NOT NULL);

-- The schema's version is checked by every connection.
GRANT SELECT ON schema_migrations TO crm_app;
GRANT USAGE ON SCHEMA public TO crm_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO crm_app;

-- Protecting tables is the migrator's business (it needs the tables' ownership anyway).
REVOKE EXECUTE ON FUNCTION crm_protect(regclass, text) FROM PUBLIC;
