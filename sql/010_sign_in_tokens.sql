-- Sign-in tokens for `crm serve`: `crm users token EMAIL` issues one, the browser trades it for
-- a session cookie, and every app opened in that browser acts as the token's user.
--
-- Only the token's SHA-256 is kept: a token is 32 random bytes, so its hash cannot be reversed
-- or guessed, and a copy of this table (a backup, a snapshot) signs nobody in. A revoked token
-- stays listed (who had access, until when) and ends the sessions it started. The audit log
-- keeps each token's story as changes to its row: 'create' when issued, 'update' when a browser
-- signs in with it (after: event 'sign_in', the address and browser) or when it is revoked.

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
