-- Tags: free labels on companies, contacts and deals ("vip", "partner", "q4-push"), queried
-- with "has tag" shortcuts and react-querybuilder's match modes over the elements.
ALTER TABLE companies ADD COLUMN tags text[] NOT NULL DEFAULT '{}'
    CHECK (array_position(tags, NULL) IS NULL AND array_ndims(tags) IS DISTINCT FROM 2);
ALTER TABLE contacts ADD COLUMN tags text[] NOT NULL DEFAULT '{}'
    CHECK (array_position(tags, NULL) IS NULL AND array_ndims(tags) IS DISTINCT FROM 2);
ALTER TABLE deals ADD COLUMN tags text[] NOT NULL DEFAULT '{}'
    CHECK (array_position(tags, NULL) IS NULL AND array_ndims(tags) IS DISTINCT FROM 2);
CREATE INDEX companies_tags_idx ON companies USING gin (tags);
CREATE INDEX contacts_tags_idx ON contacts USING gin (tags);
CREATE INDEX deals_tags_idx ON deals USING gin (tags);
