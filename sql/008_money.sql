-- Money that adds up: one reporting currency for every total, and dated exchange rates into it.
--
-- crm_settings holds settings that belong to the database rather than to one machine
-- (the reporting currency first). exchange_rates holds, per currency and date, how much one
-- unit of that currency is worth in the reporting currency. A deal converts at the rate of its
-- close date when it is closed, else at the latest rate; the nearest earlier rate applies.
-- The reporting currency itself has one row with rate 1, so a conversion never special-cases it.

CREATE TABLE crm_settings (
    key        text PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9_]*$'),
    value      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by uuid REFERENCES users (id)
);
INSERT INTO crm_settings (key, value) VALUES ('reporting_currency', '"USD"');

CREATE TABLE exchange_rates (
    currency   text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    rate_date  date NOT NULL,
    rate       numeric(24, 12) NOT NULL CHECK (rate > 0),
    source     text,
    PRIMARY KEY (currency, rate_date)
);
INSERT INTO exchange_rates (currency, rate_date, rate, source) VALUES ('USD', DATE '1900-01-01', 1, 'reporting currency');
