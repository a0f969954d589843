-- Roles and teams (row-level security itself is sql/017: a new enum value cannot be used in the
-- transaction that adds it).
--
-- admin: everything; manager: their teams' records; rep: their own deals and activities;
-- analyst: reads everything, writes nothing. A team has one manager and any number of members.

ALTER TYPE user_role ADD VALUE IF NOT EXISTS 'analyst';

CREATE TABLE teams (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text NOT NULL CHECK (btrim(name) <> ''),
    manager_id uuid REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by uuid REFERENCES users (id)
);
CREATE UNIQUE INDEX teams_name_key ON teams (lower(name));
CREATE INDEX teams_manager_idx ON teams (manager_id);
SELECT crm_track_changes('teams');

CREATE TABLE team_members (
    team_id  uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    added_at timestamptz NOT NULL DEFAULT now(),
    added_by uuid REFERENCES users (id),
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user_idx ON team_members (user_id);

-- Per-user database logins (`crm users db-credentials`) and the user each one acts as.
CREATE TABLE crm_user_logins (
    login      text PRIMARY KEY,
    user_id    uuid NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Role and team changes are audited as grants and revocations.
ALTER TABLE audit_log DROP CONSTRAINT audit_log_operation_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_operation_check
    CHECK (operation IN ('create', 'update', 'delete', 'restore', 'move', 'export', 'grant', 'revoke'));
