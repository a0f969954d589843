-- Sign-in tokens for `crm serve`: `crm users token EMAIL` issues one, the browser trades it for
-- a session cookie, and every app opened in that browser acts as the token's user.
--
-- Only the token's SHA-256 is kept: a token is 32 random bytes, so its hash cannot be reversed
-- or guessed, and a copy of this table (a backup, a snapshot) signs nobody in. A revoked token
-- stays listed (who had access, until when) and ends the sessions it started.

CREATE TABLE sign_in_tokens (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash   text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   uuid REFERENCES users (id),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX sign_in_tokens_user_idx ON sign_in_tokens (user_id);

-- Sign-ins and token changes go to the audit log beside record changes: 'sign_in' and 'revoke'
-- join whatever operations the log already allows, read from its check, so that an earlier
-- migration may have added its own.
DO $$
DECLARE
    allowed text[];
BEGIN
    SELECT array_agg(DISTINCT m[1]) INTO allowed
    FROM pg_constraint c, regexp_matches(pg_get_constraintdef(c.oid), '''([a-z_]+)''', 'g') AS m
    WHERE c.conrelid = 'audit_log'::regclass AND c.conname = 'audit_log_operation_check';
    IF allowed IS NULL THEN
        RAISE EXCEPTION 'audit_log_operation_check is missing';
    END IF;
    ALTER TABLE audit_log DROP CONSTRAINT audit_log_operation_check;
    -- IN (...) again, so that the check reads as the original did ('create'::text, ...)
    EXECUTE format('ALTER TABLE audit_log ADD CONSTRAINT audit_log_operation_check CHECK (operation IN (%s))',
                   (SELECT string_agg(quote_literal(op), ', ' ORDER BY op)
                    FROM (SELECT DISTINCT unnest(allowed || ARRAY['sign_in', 'revoke']) AS op) AS ops));
END $$;
