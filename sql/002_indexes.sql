-- Indexes for the screens and searches: pipeline board, owners' lists, forecasts,
-- timelines, full-text and fuzzy (trigram) search. Kept apart from the tables so that
-- bulk loads can drop and rebuild the expensive ones (see services/demo_data.py).

CREATE INDEX companies_owner_idx ON companies (owner_id);
CREATE INDEX companies_search_idx ON companies USING gin (search_vector);
CREATE INDEX companies_name_trgm_idx ON companies USING gin (name gin_trgm_ops);
CREATE INDEX companies_domain_trgm_idx ON companies USING gin (domain gin_trgm_ops);

CREATE INDEX contacts_company_idx ON contacts (company_id);
CREATE INDEX contacts_owner_idx ON contacts (owner_id);
CREATE INDEX contacts_search_idx ON contacts USING gin (search_vector);
CREATE INDEX contacts_name_trgm_idx ON contacts USING gin ((first_name || ' ' || last_name) gin_trgm_ops);
CREATE INDEX contacts_email_trgm_idx ON contacts USING gin (email gin_trgm_ops);

CREATE INDEX deals_stage_updated_idx ON deals (stage_id, updated_at DESC) WHERE deleted_at IS NULL;
CREATE INDEX deals_company_idx ON deals (company_id);
CREATE INDEX deals_contact_idx ON deals (contact_id);
CREATE INDEX deals_owner_idx ON deals (owner_id);
CREATE INDEX deals_expected_close_idx ON deals (expected_close_date);
CREATE INDEX deals_value_idx ON deals (value);
CREATE INDEX deals_search_idx ON deals USING gin (search_vector);
CREATE INDEX deals_title_trgm_idx ON deals USING gin (title gin_trgm_ops);

CREATE INDEX activities_deal_timeline_idx ON activities (deal_id, created_at DESC);
CREATE INDEX activities_contact_timeline_idx ON activities (contact_id, created_at DESC);
CREATE INDEX activities_company_timeline_idx ON activities (company_id, created_at DESC);
CREATE INDEX activities_owner_due_idx ON activities (owner_id, due_at);
CREATE INDEX activities_search_idx ON activities USING gin (search_vector);
