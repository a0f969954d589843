-- Core CRM schema: users, companies, contacts, pipeline stages, deals, activities,
-- saved queries and the audit log. Every business table carries the same bookkeeping
-- columns (id, created/updated at/by, deleted_at, version, custom_fields).

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TYPE user_role AS ENUM ('admin', 'manager', 'rep');
CREATE TYPE company_size AS ENUM ('startup', 'small', 'medium', 'large', 'enterprise');
CREATE TYPE contact_method AS ENUM ('email', 'phone', 'sms', 'linkedin');
CREATE TYPE lifecycle_stage AS ENUM ('lead', 'prospect', 'customer', 'champion', 'inactive');
CREATE TYPE deal_type AS ENUM ('new_business', 'existing_business', 'renewal', 'upgrade');
CREATE TYPE priority_level AS ENUM ('low', 'medium', 'high', 'urgent');
CREATE TYPE activity_type AS ENUM ('call', 'email', 'meeting', 'task', 'note', 'linkedin_message', 'stage_change');
CREATE TYPE activity_status AS ENUM ('pending', 'in_progress', 'completed', 'cancelled');

CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email         text NOT NULL,
    full_name     text NOT NULL,
    role          user_role NOT NULL DEFAULT 'rep',
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    created_by    uuid REFERENCES users (id),
    updated_by    uuid REFERENCES users (id),
    deleted_at    timestamptz,
    version       integer NOT NULL DEFAULT 1,
    custom_fields jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- The built-in actor for writes made without a named user (scripts, imports, migrations).
INSERT INTO users (id, email, full_name, role)
VALUES ('00000000-0000-0000-0000-000000000001', 'system@crm.local', 'System', 'admin');

CREATE TABLE companies (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name           text NOT NULL CHECK (btrim(name) <> ''),
    domain         text,
    industry       text,
    size           company_size,
    employees      integer CHECK (employees >= 0),
    annual_revenue numeric(16, 2) CHECK (annual_revenue >= 0),
    website        text,
    phone          text,
    email          text,
    address        jsonb,
    owner_id       uuid REFERENCES users (id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    created_by     uuid REFERENCES users (id),
    updated_by     uuid REFERENCES users (id),
    deleted_at     timestamptz,
    version        integer NOT NULL DEFAULT 1,
    custom_fields  jsonb NOT NULL DEFAULT '{}'::jsonb,
    search_vector  tsvector GENERATED ALWAYS AS (
        to_tsvector('simple', coalesce(name, '') || ' ' || coalesce(domain, '') || ' ' || coalesce(industry, ''))
    ) STORED
);

CREATE TABLE contacts (
    id                       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id               uuid REFERENCES companies (id),
    first_name               text NOT NULL,
    last_name                text NOT NULL,
    email                    text,
    phone                    text,
    job_title                text,
    preferred_contact_method contact_method,
    timezone                 text,
    is_primary               boolean NOT NULL DEFAULT false,
    lead_source              text,
    lead_score               integer CHECK (lead_score BETWEEN 0 AND 100),
    lifecycle_stage          lifecycle_stage NOT NULL DEFAULT 'lead',
    social_profiles          jsonb,
    owner_id                 uuid REFERENCES users (id),
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    created_by               uuid REFERENCES users (id),
    updated_by               uuid REFERENCES users (id),
    deleted_at               timestamptz,
    version                  integer NOT NULL DEFAULT 1,
    custom_fields            jsonb NOT NULL DEFAULT '{}'::jsonb,
    search_vector            tsvector GENERATED ALWAYS AS (
        to_tsvector('simple', first_name || ' ' || last_name || ' ' || coalesce(email, '') || ' ' || coalesce(job_title, ''))
    ) STORED
);
-- Case-insensitive uniqueness among live contacts; a soft-deleted contact frees its address.
CREATE UNIQUE INDEX contacts_email_key ON contacts (lower(email)) WHERE deleted_at IS NULL;

CREATE TABLE pipeline_stages (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name            text NOT NULL CHECK (btrim(name) <> ''),
    description     text,
    position        integer NOT NULL,
    probability     numeric(5, 4) NOT NULL DEFAULT 0 CHECK (probability BETWEEN 0 AND 1),
    is_active       boolean NOT NULL DEFAULT true,
    is_closed_won   boolean NOT NULL DEFAULT false,
    is_closed_lost  boolean NOT NULL DEFAULT false,
    required_fields jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(required_fields) = 'array'),
    colour          text CHECK (colour ~ '^#[0-9a-fA-F]{6}$'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    created_by      uuid REFERENCES users (id),
    updated_by      uuid REFERENCES users (id),
    deleted_at      timestamptz,
    version         integer NOT NULL DEFAULT 1,
    custom_fields   jsonb NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT pipeline_stages_position_key UNIQUE (position) DEFERRABLE INITIALLY IMMEDIATE,
    CHECK (NOT (is_closed_won AND is_closed_lost))
);
CREATE UNIQUE INDEX pipeline_stages_name_key ON pipeline_stages (lower(name)) WHERE deleted_at IS NULL;

-- The default pipeline. Fixed ids keep demo data identical across databases.
INSERT INTO pipeline_stages (id, name, description, position, probability, is_closed_won, is_closed_lost, required_fields, colour) VALUES
    ('00000000-0000-0000-0001-000000000001', 'Lead',        'New opportunity, not yet qualified',       1, 0.1000, false, false, '[]',                 '#9e9e9e'),
    ('00000000-0000-0000-0001-000000000002', 'Qualified',   'Budget, authority, need and timing known', 2, 0.2500, false, false, '[]',                 '#42a5f5'),
    ('00000000-0000-0000-0001-000000000003', 'Proposal',    'Proposal or quote sent',                   3, 0.5000, false, false, '["value"]',          '#7e57c2'),
    ('00000000-0000-0000-0001-000000000004', 'Negotiation', 'Terms under negotiation',                  4, 0.7500, false, false, '["value", "expected_close_date"]', '#ffa726'),
    ('00000000-0000-0000-0001-000000000005', 'Won',         'Closed won',                               5, 1.0000, true,  false, '["value"]',          '#66bb6a'),
    ('00000000-0000-0000-0001-000000000006', 'Lost',        'Closed lost',                              6, 0.0000, false, true,  '["close_reason"]',   '#ef5350');

CREATE TABLE deals (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id          uuid NOT NULL REFERENCES companies (id),
    contact_id          uuid REFERENCES contacts (id),
    stage_id            uuid NOT NULL REFERENCES pipeline_stages (id),
    owner_id            uuid REFERENCES users (id),
    title               text NOT NULL CHECK (btrim(title) <> ''),
    description         text,
    value               numeric(12, 2) CHECK (value >= 0),
    currency            text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    probability         numeric(5, 4) CHECK (probability BETWEEN 0 AND 1),
    weighted_value      numeric(12, 2) GENERATED ALWAYS AS (round(value * coalesce(probability, 0), 2)) STORED,
    expected_close_date date,
    actual_close_date   date,
    first_contact_date  date,
    last_activity_at    timestamptz,
    lead_source         text,
    campaign            text,
    type                deal_type NOT NULL DEFAULT 'new_business',
    priority            priority_level NOT NULL DEFAULT 'medium',
    close_reason        text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    created_by          uuid REFERENCES users (id),
    updated_by          uuid REFERENCES users (id),
    deleted_at          timestamptz,
    version             integer NOT NULL DEFAULT 1,
    custom_fields       jsonb NOT NULL DEFAULT '{}'::jsonb,
    search_vector       tsvector GENERATED ALWAYS AS (
        to_tsvector('simple', title || ' ' || coalesce(description, ''))
    ) STORED
);

CREATE TABLE activities (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    deal_id          uuid REFERENCES deals (id),
    contact_id       uuid REFERENCES contacts (id),
    company_id       uuid REFERENCES companies (id),
    owner_id         uuid REFERENCES users (id),
    type             activity_type NOT NULL,
    subject          text NOT NULL,
    description      text,
    scheduled_at     timestamptz,
    completed_at     timestamptz,
    due_at           timestamptz,
    duration_minutes integer CHECK (duration_minutes >= 0),
    status           activity_status NOT NULL DEFAULT 'pending',
    priority         priority_level NOT NULL DEFAULT 'medium',
    external_id      text,
    external_source  text,
    external_data    jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    created_by       uuid REFERENCES users (id),
    updated_by       uuid REFERENCES users (id),
    deleted_at       timestamptz,
    version          integer NOT NULL DEFAULT 1,
    custom_fields    jsonb NOT NULL DEFAULT '{}'::jsonb,
    search_vector    tsvector GENERATED ALWAYS AS (
        to_tsvector('simple', subject || ' ' || coalesce(description, ''))
    ) STORED
);
-- Ingested mail and calendar items are identified by their source's id.
CREATE UNIQUE INDEX activities_external_key ON activities (external_source, external_id)
    WHERE external_id IS NOT NULL;

CREATE TABLE saved_queries (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name          text NOT NULL CHECK (btrim(name) <> ''),
    description   text,
    entity        text NOT NULL,
    spec          jsonb NOT NULL,
    owner_id      uuid REFERENCES users (id),
    shared        boolean NOT NULL DEFAULT false,
    use_count     integer NOT NULL DEFAULT 0,
    last_used_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    created_by    uuid REFERENCES users (id),
    updated_by    uuid REFERENCES users (id),
    deleted_at    timestamptz,
    version       integer NOT NULL DEFAULT 1,
    custom_fields jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE UNIQUE INDEX saved_queries_owner_name_key ON saved_queries (owner_id, lower(name)) WHERE deleted_at IS NULL;

CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id),
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    entity      text NOT NULL,
    entity_id   uuid NOT NULL,
    operation   text NOT NULL CHECK (operation IN ('create', 'update', 'delete', 'restore', 'move')),
    before      jsonb,
    after       jsonb
);
CREATE INDEX audit_log_entity_idx ON audit_log (entity, entity_id, at);
