-- What imported data needs that the schema refused.
--
-- * A deal without a company: real exports hold opportunities with no account yet.
-- * Products: a deal can name what it sells (name, family, list price with its currency).
-- * Audit rows written by an import are marked, so history read from audit_log can tell a
--   record's own past (created, entered its stage, closed on the dates the file gave) from
--   edits made in the CRM.

ALTER TABLE deals ALTER COLUMN company_id DROP NOT NULL;

CREATE TABLE products (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name          text NOT NULL CHECK (btrim(name) <> ''),
    family        text,
    list_price    numeric(12, 2) CHECK (list_price >= 0),
    currency      text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    created_by    uuid REFERENCES users (id),
    updated_by    uuid REFERENCES users (id),
    deleted_at    timestamptz,
    version       integer NOT NULL DEFAULT 1,
    custom_fields jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE UNIQUE INDEX products_name_key ON products (lower(name)) WHERE deleted_at IS NULL;
SELECT crm_track_changes('products');

ALTER TABLE deals ADD COLUMN product_id uuid REFERENCES products (id);
CREATE INDEX deals_product_idx ON deals (product_id);

ALTER TABLE audit_log ADD COLUMN imported boolean NOT NULL DEFAULT false;
