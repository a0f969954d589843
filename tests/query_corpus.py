"""Query specs with the SQL a person would write for the same question (on tests/query_data.py).

Each entry: (id, spec, hand-written PostgreSQL). Relative dates are relative to
query_data.NOW = 2026-06-17 12:00 UTC, a Wednesday.
"""

LIVE_DEALS = "FROM deals d WHERE d.deleted_at IS NULL"


def rule(field, operator, value=None, **extra):
    return {"field": field, "operator": operator, "value": value, **extra}


def where(*rules, combinator="and", negate=False):
    return {"combinator": combinator, "not": negate, "rules": list(rules)}


def deals(*rules, select=("title",), **extra):
    return {"entity": "deals", "select": list(select), "where": where(*rules), **extra}


CORPUS = [
    # -- text ------------------------------------------------------------------------------
    ("text =", deals(rule("title", "=", "Acme renewal")), f"SELECT d.title {LIVE_DEALS} AND d.title = 'Acme renewal'"),
    (
        "text != excludes nulls",
        {"entity": "companies", "select": ["name"], "where": where(rule("industry", "!=", "Software"))},
        "SELECT name FROM companies WHERE deleted_at IS NULL AND industry <> 'Software'",
    ),
    ("text <", deals(rule("title", "<", "Globex")), f"SELECT d.title {LIVE_DEALS} AND d.title < 'Globex'"),
    (
        "text between reversed",
        deals(rule("title", "between", ["O", "Acme"])),
        f"SELECT d.title {LIVE_DEALS} AND d.title BETWEEN 'Acme' AND 'O'",
    ),
    (
        "contains is case-insensitive",
        deals(rule("title", "contains", "RENEWAL")),
        f"SELECT d.title {LIVE_DEALS} AND lower(d.title) LIKE '%renewal%'",
    ),
    (
        "contains % literally",
        deals(rule("title", "contains", "50%")),
        f"SELECT d.title {LIVE_DEALS} AND strpos(lower(d.title), '50%') > 0",
    ),
    (
        "contains _ literally",
        deals(rule("title", "contains", "t_p")),
        f"SELECT d.title {LIVE_DEALS} AND strpos(lower(d.title), 't_p') > 0",
    ),
    (
        "contains backslash",
        deals(rule("title", "contains", "\\ back")),
        f"SELECT d.title {LIVE_DEALS} AND strpos(d.title, E'\\\\ back') > 0",
    ),
    (
        "beginsWith",
        deals(rule("title", "beginsWith", "glob")),
        f"SELECT d.title {LIVE_DEALS} AND d.title ILIKE 'glob%'",
    ),
    (
        "endsWith quote",
        {"entity": "companies", "select": ["name"], "where": where(rule("name", "endsWith", "'brien \\ sons"))},
        "SELECT name FROM companies WHERE deleted_at IS NULL AND lower(name) LIKE '%''brien \\\\ sons'",
    ),
    (
        "doesNotContain excludes nulls",
        {"entity": "companies", "select": ["name"], "where": where(rule("industry", "doesNotContain", "soft"))},
        "SELECT name FROM companies WHERE deleted_at IS NULL AND industry NOT ILIKE '%soft%'",
    ),
    (
        "doesNotBeginWith",
        deals(rule("title", "doesNotBeginWith", "Acme")),
        f"SELECT d.title {LIVE_DEALS} AND d.title NOT ILIKE 'acme%'",
    ),
    (
        "doesNotEndWith",
        deals(rule("title", "doesNotEndWith", "DEAL")),
        f"SELECT d.title {LIVE_DEALS} AND d.title NOT ILIKE '%deal'",
    ),
    (
        "text in as csv string",
        deals(rule("title", "in", "Acme renewal, RENEWAL big")),
        f"SELECT d.title {LIVE_DEALS} AND d.title IN ('Acme renewal', 'RENEWAL big')",
    ),
    (
        "text notIn",
        deals(rule("title", "notIn", ["Acme renewal"])),
        f"SELECT d.title {LIVE_DEALS} AND d.title <> 'Acme renewal'",
    ),
    (
        "sql fragment is just text",
        {"entity": "companies", "select": ["name"], "where": where(rule("name", "contains", "; DROP TABLE deals;--"))},
        "SELECT name FROM companies WHERE deleted_at IS NULL AND strpos(lower(name), '; drop table deals;--') > 0",
    ),
    (
        "unicode contains",
        deals(rule("title", "contains", "ÆØÅ")),
        f"SELECT d.title {LIVE_DEALS} AND d.title ILIKE '%ÆØÅ%'",
    ),
    # -- numbers ---------------------------------------------------------------------------
    ("money >= number", deals(rule("value", ">=", 80000)), f"SELECT d.title {LIVE_DEALS} AND d.value >= 80000"),
    (
        "money < numeric string",
        deals(rule("value", "<", "300.01")),
        f"SELECT d.title {LIVE_DEALS} AND d.value < 300.01",
    ),
    ("money = cents", deals(rule("value", "=", 75000.5)), f"SELECT d.title {LIVE_DEALS} AND d.value = 75000.50"),
    (
        "money between csv",
        deals(rule("value", "between", "1000000, 10000")),
        f"SELECT d.title {LIVE_DEALS} AND d.value BETWEEN 10000 AND 1000000",
    ),
    (
        "money notBetween",
        deals(rule("value", "notBetween", [1000, 1000000])),
        f"SELECT d.title {LIVE_DEALS} AND NOT (d.value BETWEEN 1000 AND 1000000)",
    ),
    (
        "money in",
        deals(rule("value", "in", [300, "12000"])),
        f"SELECT d.title {LIVE_DEALS} AND d.value IN (300, 12000)",
    ),
    ("money null", deals(rule("value", "null")), f"SELECT d.title {LIVE_DEALS} AND d.value IS NULL"),
    (
        "integer notNull",
        {"entity": "contacts", "select": ["last_name"], "where": where(rule("lead_score", "notNull"))},
        "SELECT last_name FROM contacts WHERE deleted_at IS NULL AND lead_score IS NOT NULL",
    ),
    (
        "integer notIn",
        {"entity": "contacts", "select": ["last_name"], "where": where(rule("lead_score", "notIn", "80,45"))},
        "SELECT last_name FROM contacts WHERE deleted_at IS NULL AND lead_score NOT IN (80, 45)",
    ),
    (
        "field to field",
        deals(rule("value", ">", "company.annual_revenue", valueSource="field"), select=["title", "company.name"]),
        'SELECT d.title, c.name AS "company.name" FROM deals d LEFT JOIN companies c ON c.id = d.company_id '
        "WHERE d.deleted_at IS NULL AND d.value > c.annual_revenue",
    ),
    # -- enums, booleans, ids --------------------------------------------------------------
    ("enum =", deals(rule("priority", "=", "high")), f"SELECT d.title {LIVE_DEALS} AND d.priority = 'high'"),
    (
        "enum in",
        deals(rule("type", "in", ["renewal", "upgrade"])),
        f"SELECT d.title {LIVE_DEALS} AND d.type IN ('renewal', 'upgrade')",
    ),
    (
        "enum notIn",
        {"entity": "companies", "select": ["name"], "where": where(rule("size", "notIn", ["large"]))},
        "SELECT name FROM companies WHERE deleted_at IS NULL AND size <> 'large'",
    ),
    (
        "enum null",
        {"entity": "companies", "select": ["name"], "where": where(rule("size", "null"))},
        "SELECT name FROM companies WHERE deleted_at IS NULL AND size IS NULL",
    ),
    (
        "boolean = string",
        {"entity": "contacts", "select": ["last_name"], "where": where(rule("is_primary", "=", "true"))},
        "SELECT last_name FROM contacts WHERE deleted_at IS NULL AND is_primary",
    ),
    (
        "boolean !=",
        {"entity": "contacts", "select": ["last_name"], "where": where(rule("is_primary", "!=", True))},
        "SELECT last_name FROM contacts WHERE deleted_at IS NULL AND NOT is_primary",
    ),
    (
        "uuid =",
        deals(rule("company_id", "=", "00000000-0000-0002-0000-000000000002")),
        f"SELECT d.title {LIVE_DEALS} AND d.company_id = '00000000-0000-0002-0000-000000000002'",
    ),
    (
        "uuid in",
        deals(rule("owner_id", "in", ["00000000-0000-0001-0000-000000000001"])),
        f"SELECT d.title {LIVE_DEALS} AND d.owner_id = '00000000-0000-0001-0000-000000000001'",
    ),
    ("uuid null", deals(rule("owner_id", "null")), f"SELECT d.title {LIVE_DEALS} AND d.owner_id IS NULL"),
    (
        "json null",
        {"entity": "companies", "select": ["name"], "where": where(rule("address", "null"))},
        "SELECT name FROM companies WHERE deleted_at IS NULL AND address IS NULL",
    ),
    # -- dates and times -------------------------------------------------------------------
    (
        "date =",
        deals(rule("expected_close_date", "=", "2026-06-17")),
        f"SELECT d.title {LIVE_DEALS} AND d.expected_close_date = '2026-06-17'",
    ),
    (
        "date > ",
        deals(rule("expected_close_date", ">", "2026-06-17")),
        f"SELECT d.title {LIVE_DEALS} AND d.expected_close_date > '2026-06-17'",
    ),
    (
        "date between",
        deals(rule("expected_close_date", "between", ["2026-06-01", "2026-06-30"])),
        f"SELECT d.title {LIVE_DEALS} AND d.expected_close_date BETWEEN '2026-06-01' AND '2026-06-30'",
    ),
    (
        "date inLast 30 days",
        deals(rule("expected_close_date", "inLast", {"amount": 30, "unit": "day"})),
        f"SELECT d.title {LIVE_DEALS} AND d.expected_close_date >= '2026-05-18' AND d.expected_close_date <= '2026-06-17'",
    ),
    (
        "date inNext 1 month",
        deals(rule("expected_close_date", "inNext", {"amount": 1, "unit": "month"})),
        f"SELECT d.title {LIVE_DEALS} AND d.expected_close_date BETWEEN '2026-06-17' AND '2026-07-17'",
    ),
    (
        "date olderThan 1 month",
        deals(rule("expected_close_date", "olderThan", {"amount": 1, "unit": "month"})),
        f"SELECT d.title {LIVE_DEALS} AND d.expected_close_date < '2026-05-17'",
    ),
    (
        "date thisMonth",
        deals(rule("expected_close_date", "thisMonth")),
        f"SELECT d.title {LIVE_DEALS} AND date_trunc('month', d.expected_close_date) = '2026-06-01'",
    ),
    (
        "date lastMonth",
        deals(rule("actual_close_date", "lastMonth")),
        f"SELECT d.title {LIVE_DEALS} AND d.actual_close_date >= '2026-05-01' AND d.actual_close_date < '2026-06-01'",
    ),
    (
        "date nextQuarter",
        deals(rule("expected_close_date", "nextQuarter")),
        f"SELECT d.title {LIVE_DEALS} AND d.expected_close_date >= '2026-07-01' AND d.expected_close_date < '2026-10-01'",
    ),
    (
        "date thisWeek",
        deals(rule("expected_close_date", "thisWeek")),
        f"SELECT d.title {LIVE_DEALS} AND d.expected_close_date BETWEEN '2026-06-15' AND '2026-06-21'",
    ),
    (
        "date lastYear",
        deals(rule("created_at", "lastYear")),
        f"SELECT d.title {LIVE_DEALS} AND d.created_at >= '2025-01-01T00:00:00Z' AND d.created_at < '2026-01-01T00:00:00Z'",
    ),
    (
        "timestamp today",
        deals(rule("created_at", "today")),
        f"SELECT d.title {LIVE_DEALS} AND d.created_at >= '2026-06-17T00:00:00Z' AND d.created_at < '2026-06-18T00:00:00Z'",
    ),
    (
        "timestamp inLast 1 day is exclusive of now",
        {
            "entity": "activities",
            "select": ["subject"],
            "where": where(rule("completed_at", "inLast", {"amount": 1, "unit": "day"})),
        },
        "SELECT subject FROM activities WHERE deleted_at IS NULL AND completed_at >= '2026-06-16T12:00:00Z' "
        "AND completed_at < '2026-06-17T12:00:00Z'",
    ),
    (
        "timestamp inNext week",
        {
            "entity": "activities",
            "select": ["subject"],
            "where": where(rule("due_at", "inNext", {"amount": 1, "unit": "week"})),
        },
        "SELECT subject FROM activities WHERE deleted_at IS NULL AND due_at >= '2026-06-17T12:00:00Z' "
        "AND due_at < '2026-06-24T12:00:00Z'",
    ),
    (
        "timestamp >= date string",
        {"entity": "activities", "select": ["subject"], "where": where(rule("completed_at", ">=", "2026-06-16"))},
        "SELECT subject FROM activities WHERE deleted_at IS NULL AND completed_at >= '2026-06-16T00:00:00Z'",
    ),
    (
        "timestamp yesterday",
        {"entity": "activities", "select": ["subject"], "where": where(rule("completed_at", "yesterday"))},
        "SELECT subject FROM activities WHERE deleted_at IS NULL AND completed_at::date = '2026-06-16'",
    ),
    # -- groups ----------------------------------------------------------------------------
    (
        "nested or in and",
        deals(
            rule("value", ">", 1000),
            where(rule("title", "contains", "acme"), rule("priority", "=", "urgent"), combinator="or"),
        ),
        f"SELECT d.title {LIVE_DEALS} AND d.value > 1000 AND (d.title ILIKE '%acme%' OR d.priority = 'urgent')",
    ),
    (
        "not group",
        deals(where(rule("title", "contains", "acme"), rule("value", "null"), combinator="or", negate=True)),
        f"SELECT d.title {LIVE_DEALS} AND NOT (d.title ILIKE '%acme%' OR d.value IS NULL)",
    ),
    ("empty group filters nothing", deals(where()), f"SELECT d.title {LIVE_DEALS}"),
    (
        "no where at all",
        {"entity": "companies", "select": ["name"]},
        "SELECT name FROM companies WHERE deleted_at IS NULL",
    ),
    # -- relations -------------------------------------------------------------------------
    (
        "join many-to-one",
        deals(rule("company.industry", "in", ["Software", "Fintech"]), select=["title", "company.name", "stage.name"]),
        "SELECT d.title, c.name, s.name FROM deals d LEFT JOIN companies c ON c.id = d.company_id "
        "LEFT JOIN pipeline_stages s ON s.id = d.stage_id WHERE d.deleted_at IS NULL AND c.industry IN ('Software', 'Fintech')",
    ),
    (
        "join follows deleted company",
        deals(rule("company.name", "=", "Ghost Corp"), select=["title", "company.name"]),
        "SELECT d.title, c.name FROM deals d JOIN companies c ON c.id = d.company_id WHERE d.deleted_at IS NULL AND c.name = 'Ghost Corp'",
    ),
    (
        "two-step path",
        deals(rule("company.owner.email", "=", "alice@example.com"), select=["title", "company.owner.full_name"]),
        "SELECT d.title, u.full_name FROM deals d JOIN companies c ON c.id = d.company_id JOIN users u ON u.id = c.owner_id "
        "WHERE d.deleted_at IS NULL AND u.email = 'alice@example.com'",
    ),
    (
        "null through a missing join",
        deals(rule("contact.email", "null"), select=["title"]),
        "SELECT d.title FROM deals d LEFT JOIN contacts ct ON ct.id = d.contact_id WHERE d.deleted_at IS NULL AND ct.email IS NULL",
    ),
    (
        "related none: no activity in 30 days",
        {
            "entity": "companies",
            "select": ["name"],
            "where": where(
                {
                    "related": "activities",
                    "quantifier": "none",
                    "where": where(rule("completed_at", "inLast", {"amount": 30, "unit": "day"})),
                }
            ),
        },
        "SELECT c.name FROM companies c WHERE c.deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM activities a "
        "WHERE a.company_id = c.id AND a.deleted_at IS NULL AND a.completed_at >= '2026-05-18T12:00:00Z' "
        "AND a.completed_at < '2026-06-17T12:00:00Z')",
    ),
    (
        "related any",
        {"entity": "contacts", "select": ["last_name"], "where": where({"related": "deals", "quantifier": "any"})},
        "SELECT ct.last_name FROM contacts ct WHERE ct.deleted_at IS NULL AND EXISTS (SELECT 1 FROM deals d "
        "WHERE d.contact_id = ct.id AND d.deleted_at IS NULL)",
    ),
    (
        "related count > 2",
        deals({"related": "activities", "quantifier": "count", "operator": ">", "value": 2}),
        f"SELECT d.title {LIVE_DEALS} AND (SELECT count(*) FROM activities a WHERE a.deal_id = d.id AND a.deleted_at IS NULL) > 2",
    ),
    (
        "related count = 0 with filter",
        {
            "entity": "companies",
            "select": ["name"],
            "where": where(
                {
                    "related": "deals",
                    "quantifier": "count",
                    "operator": "=",
                    "value": 0,
                    "where": where(rule("stage.is_closed_won", "=", True)),
                }
            ),
        },
        "SELECT c.name FROM companies c WHERE c.deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM deals d "
        "JOIN pipeline_stages s ON s.id = d.stage_id WHERE d.company_id = c.id AND d.deleted_at IS NULL AND s.is_closed_won)",
    ),
    (
        "related via owner",
        {
            "entity": "users",
            "select": ["email"],
            "where": where(
                {"related": "deals", "via": "owner_id", "quantifier": "count", "operator": ">=", "value": 3}
            ),
        },
        "SELECT u.email FROM users u WHERE u.deleted_at IS NULL AND (SELECT count(*) FROM deals d WHERE d.owner_id = u.id "
        "AND d.deleted_at IS NULL) >= 3",
    ),
    (
        "nested related",
        {
            "entity": "companies",
            "select": ["name"],
            "where": where(
                {
                    "related": "deals",
                    "quantifier": "any",
                    "where": where(
                        {"related": "activities", "quantifier": "any", "where": where(rule("type", "=", "meeting"))}
                    ),
                }
            ),
        },
        "SELECT c.name FROM companies c WHERE c.deleted_at IS NULL AND EXISTS (SELECT 1 FROM deals d WHERE d.company_id = c.id "
        "AND d.deleted_at IS NULL AND EXISTS (SELECT 1 FROM activities a WHERE a.deal_id = d.id AND a.deleted_at IS NULL "
        "AND a.type = 'meeting'))",
    ),
    # -- custom fields ---------------------------------------------------------------------
    (
        "custom text field",
        {
            "entity": "companies",
            "select": ["name", "custom_fields.tier"],
            "where": where(rule("custom_fields.tier", "=", "gold")),
        },
        "SELECT name, custom_fields->>'tier' FROM companies WHERE deleted_at IS NULL AND custom_fields->>'tier' = 'gold'",
    ),
    (
        "custom number field",
        {"entity": "companies", "select": ["name"], "where": where(rule("custom_fields.seats", ">", 10))},
        "SELECT name FROM companies WHERE deleted_at IS NULL AND (custom_fields->>'seats')::numeric > 10",
    ),
    # -- shape -----------------------------------------------------------------------------
    (
        "all fields by default",
        {"entity": "pipeline_stages", "where": where(rule("name", "=", "Won"))},
        "SELECT s.id, s.name, s.description, s.position, s.probability, s.is_active, s.is_closed_won, s.is_closed_lost, "
        "s.required_fields, s.colour, s.created_at, s.updated_at, cr.full_name, up.full_name, s.deleted_at, s.version, "
        "s.custom_fields FROM pipeline_stages s LEFT JOIN users cr ON cr.id = s.created_by "
        "LEFT JOIN users up ON up.id = s.updated_by WHERE s.deleted_at IS NULL AND s.name = 'Won'",
    ),
    # Names in place of ids, deleted companies included (a deal still names its deleted company).
    (
        "deals show names by default",
        {"entity": "deals", "where": where(rule("value", ">=", 100))},
        "SELECT d.id, c.name, ct.first_name || ' ' || ct.last_name, s.name, o.full_name, d.title, d.description, d.value, "
        "d.currency, d.probability, d.weighted_value, d.expected_close_date, d.actual_close_date, d.first_contact_date, "
        "d.last_activity_at, d.lead_source, d.campaign, d.type, d.priority, d.close_reason, d.created_at, d.updated_at, "
        "cr.full_name, up.full_name, d.deleted_at, d.version, d.custom_fields, d.stage_entered_at, p.name, d.tags "
        "FROM deals d LEFT JOIN companies c ON c.id = d.company_id LEFT JOIN contacts ct ON ct.id = d.contact_id "
        "JOIN pipeline_stages s ON s.id = d.stage_id LEFT JOIN users o ON o.id = d.owner_id "
        "LEFT JOIN users cr ON cr.id = d.created_by LEFT JOIN users up ON up.id = d.updated_by "
        "LEFT JOIN products p ON p.id = d.product_id WHERE d.deleted_at IS NULL AND d.value >= 100",
    ),
    (
        "activities show names by default",
        {"entity": "activities", "where": where(rule("type", "in", ["call", "task"]))},
        "SELECT a.id, d.title, ct.first_name || ' ' || ct.last_name, c.name, o.full_name, a.type, a.subject, "
        "a.description, a.scheduled_at, a.completed_at, a.due_at, a.duration_minutes, a.status, a.priority, "
        "a.external_id, a.external_source, a.external_data, a.created_at, a.updated_at, cr.full_name, up.full_name, "
        "a.deleted_at, a.version, a.custom_fields FROM activities a LEFT JOIN deals d ON d.id = a.deal_id "
        "LEFT JOIN contacts ct ON ct.id = a.contact_id LEFT JOIN companies c ON c.id = a.company_id "
        "LEFT JOIN users o ON o.id = a.owner_id LEFT JOIN users cr ON cr.id = a.created_by "
        "LEFT JOIN users up ON up.id = a.updated_by WHERE a.deleted_at IS NULL AND a.type IN ('call', 'task')",
    ),
    (
        "default columns sort by a name",
        {"entity": "contacts", "order_by": [{"field": "company", "dir": "desc"}, "last_name"], "limit": 3},
        "SELECT ct.id, c.name, ct.first_name, ct.last_name, ct.email, ct.phone, ct.job_title, ct.preferred_contact_method, "
        "ct.timezone, ct.is_primary, ct.lead_source, ct.lead_score, ct.lifecycle_stage, ct.social_profiles, o.full_name, "
        "ct.created_at, ct.updated_at, cr.full_name, up.full_name, ct.deleted_at, ct.version, ct.custom_fields, ct.tags "
        "FROM contacts ct LEFT JOIN companies c ON c.id = ct.company_id LEFT JOIN users o ON o.id = ct.owner_id "
        "LEFT JOIN users cr ON cr.id = ct.created_by LEFT JOIN users up ON up.id = ct.updated_by "
        "WHERE ct.deleted_at IS NULL ORDER BY c.name DESC NULLS LAST, ct.last_name, ct.id LIMIT 3",
    ),
    (
        "default columns keep ids selectable",
        {
            "entity": "deals",
            "select": ["title", "company_id", "company.name"],
            "where": where(rule("company.name", "beginsWith", "Acme")),
        },
        "SELECT d.title, d.company_id, c.name FROM deals d JOIN companies c ON c.id = d.company_id "
        "WHERE d.deleted_at IS NULL AND c.name ILIKE 'acme%'",
    ),
    (
        "select with alias and types",
        deals(
            rule("title", "=", "Acme renewal"),
            select=[
                "id",
                "value",
                "probability",
                "expected_close_date",
                "created_at",
                {"field": "stage.is_closed_won", "as": "won"},
                "type",
            ],
        ),
        "SELECT d.id, d.value, d.probability, d.expected_close_date, d.created_at, s.is_closed_won AS won, d.type "
        "FROM deals d JOIN pipeline_stages s ON s.id = d.stage_id WHERE d.deleted_at IS NULL AND d.title = 'Acme renewal'",
    ),
    (
        "order and limit",
        {"entity": "deals", "select": ["title", "value"], "order_by": [{"field": "value", "dir": "desc"}], "limit": 3},
        "SELECT title, value FROM deals WHERE deleted_at IS NULL ORDER BY value DESC NULLS LAST, id LIMIT 3",
    ),
    (
        "order by unselected field with offset",
        {"entity": "deals", "select": ["title"], "order_by": ["expected_close_date", "title"], "limit": 2, "offset": 2},
        "SELECT title FROM deals WHERE deleted_at IS NULL ORDER BY expected_close_date NULLS LAST, title, id LIMIT 2 OFFSET 2",
    ),
    (
        "group by stage with aggregates",
        {
            "entity": "deals",
            "group_by": ["stage.name"],
            "aggregates": [
                {"fn": "count", "as": "deals"},
                {"fn": "sum", "field": "value", "as": "total"},
                {"fn": "avg", "field": "value", "as": "mean"},
                {"fn": "min", "field": "expected_close_date", "as": "first_close"},
                {"fn": "max", "field": "title", "as": "last_title"},
                {"fn": "count", "field": "value", "as": "valued"},
                {"fn": "count_distinct", "field": "company_id", "as": "companies"},
            ],
        },
        "SELECT s.name, count(*), sum(d.value), avg(d.value)::float8, min(d.expected_close_date), max(d.title), count(d.value), "
        "count(DISTINCT d.company_id) FROM deals d JOIN pipeline_stages s ON s.id = d.stage_id WHERE d.deleted_at IS NULL GROUP BY s.name",
    ),
    (
        "group by month with having and order",
        {
            "entity": "deals",
            "group_by": [{"field": "created_at", "trunc": "month"}],
            "aggregates": [{"fn": "count", "as": "n"}],
            "having": where(rule("n", ">=", 2)),
            "order_by": [{"field": "created_at_month", "dir": "desc"}],
        },
        "SELECT date_trunc('month', created_at)::date, count(*) FROM deals WHERE deleted_at IS NULL GROUP BY 1 HAVING count(*) >= 2 ORDER BY 1 DESC",
    ),
    (
        "group by date quarter and week",
        {
            "entity": "deals",
            "group_by": [
                {"field": "expected_close_date", "trunc": "quarter"},
                {"field": "expected_close_date", "trunc": "week", "as": "week"},
            ],
            "aggregates": [{"fn": "sum", "field": "value", "as": "total"}],
        },
        "SELECT date_trunc('quarter', expected_close_date)::date, date_trunc('week', expected_close_date)::date, sum(value) "
        "FROM deals WHERE deleted_at IS NULL GROUP BY 1, 2",
    ),
    (
        "group by owner with filter on aggregate sum",
        {
            "entity": "deals",
            "where": where(rule("stage.is_closed_lost", "=", False)),
            "group_by": ["owner.email"],
            "aggregates": [{"fn": "sum", "field": "value", "as": "total"}],
            "having": where(rule("total", ">", 100000)),
        },
        "SELECT u.email, sum(d.value) FROM deals d LEFT JOIN users u ON u.id = d.owner_id JOIN pipeline_stages s ON s.id = d.stage_id "
        "WHERE d.deleted_at IS NULL AND NOT s.is_closed_lost GROUP BY u.email HAVING sum(d.value) > 100000",
    ),
    (
        "aggregates without group_by",
        {
            "entity": "activities",
            "aggregates": [{"fn": "count"}, {"fn": "sum", "field": "duration_minutes", "as": "minutes"}],
        },
        "SELECT count(*), sum(duration_minutes) FROM activities WHERE deleted_at IS NULL",
    ),
    (
        "win rate by industry",
        {
            "entity": "deals",
            "where": where(rule("stage.is_closed_won", "=", True)),
            "group_by": ["company.industry"],
            "aggregates": [{"fn": "count", "as": "won"}],
            "order_by": ["company.industry"],
        },
        "SELECT c.industry, count(*) FROM deals d JOIN companies c ON c.id = d.company_id JOIN pipeline_stages s ON s.id = d.stage_id "
        "WHERE d.deleted_at IS NULL AND s.is_closed_won GROUP BY c.industry ORDER BY c.industry NULLS LAST",
    ),
]

# Specs that must be refused: (id, spec, path in the error, words in the message).
INVALID = [
    ("not an object", [], "", "must be a query spec object"),
    ("bad json text", "{nope", "", "not valid JSON"),
    ("missing entity", {"select": ["title"]}, "entity", "is required"),
    ("unknown top-level key", {"entity": "deals", "filter": {}}, "filter", "unknown key"),
    ("unknown entity", {"entity": "dealz"}, "entity", "unknown table or view 'dealz'"),
    ("unknown field", deals(rule("titel", "=", "x")), "where.rules[0].field", "deals has no field 'titel'"),
    ("unknown operator", deals(rule("title", "like", "x")), "where.rules[0].operator", "unknown operator 'like'"),
    (
        "text op on number",
        deals(rule("value", "contains", "1")),
        "where.rules[0].operator",
        "'contains' does not apply to money",
    ),
    ("ordering on enum", deals(rule("priority", ">", "low")), "where.rules[0].operator", "does not apply to enum"),
    (
        "relative on text",
        deals(rule("title", "inLast", {"amount": 1, "unit": "day"})),
        "where.rules[0].operator",
        "does not apply to text",
    ),
    ("number from words", deals(rule("value", ">", "lots")), "where.rules[0].value", "needs a number"),
    ("number from boolean", deals(rule("value", ">", True)), "where.rules[0].value", "needs a number"),
    ("nan", deals(rule("value", ">", "NaN")), "where.rules[0].value", "finite"),
    (
        "integer from fraction",
        {"entity": "contacts", "where": where(rule("lead_score", "=", "4.5"))},
        "where.rules[0].value",
        "whole number",
    ),
    ("bad date", deals(rule("expected_close_date", "=", "31/01/2026")), "where.rules[0].value", "needs a date"),
    ("bad timestamp", deals(rule("created_at", ">", "yesterday")), "where.rules[0].value", "needs a date or time"),
    ("unknown enum value", deals(rule("priority", "=", "critical")), "where.rules[0].value", "not a value of priority"),
    (
        "bad boolean",
        {"entity": "contacts", "where": where(rule("is_primary", "=", "maybe"))},
        "where.rules[0].value",
        "true or false",
    ),
    ("bad uuid", deals(rule("company_id", "=", "acme")), "where.rules[0].value", "needs an id"),
    ("text value for text must be text", deals(rule("title", "=", 5)), "where.rules[0].value", "needs text"),
    ("missing value", deals(rule("title", "=")), "where.rules[0].value", "needs a value"),
    ("empty in", deals(rule("title", "in", [])), "where.rules[0].value", "at least one value"),
    ("between with one value", deals(rule("value", "between", [5])), "where.rules[0].value", "needs two values"),
    ("between with bad bound", deals(rule("value", "between", [5, "x"])), "where.rules[0].value", "needs a number"),
    (
        "in item wrong type",
        deals(rule("priority", "in", ["low", "nope"])),
        "where.rules[0].value[1]",
        "not a value of priority",
    ),
    (
        "relative without amount",
        deals(rule("created_at", "inLast", {"unit": "day"})),
        "where.rules[0].value.amount",
        "whole number",
    ),
    (
        "relative negative",
        deals(rule("created_at", "inLast", {"amount": -1, "unit": "day"})),
        "where.rules[0].value.amount",
        "0 or more",
    ),
    (
        "relative bad unit",
        deals(rule("created_at", "inNext", {"amount": 1, "unit": "fortnight"})),
        "where.rules[0].value.unit",
        "one of day",
    ),
    ("relative not an object", deals(rule("created_at", "inNext", 30)), "where.rules[0].value", "amount"),
    (
        "json compared",
        {"entity": "companies", "where": where(rule("address", "=", "x"))},
        "where.rules[0].operator",
        "does not apply to json",
    ),
    (
        "nested bad rule path",
        deals(rule("title", "=", "x"), where(rule("value", ">", 1), where(rule("nope", "=", 1)))),
        "where.rules[1].rules[1].rules[0].field",
        "no field 'nope'",
    ),
    (
        "bad combinator",
        {"entity": "deals", "where": {"combinator": "xor", "rules": []}},
        "where.combinator",
        '"and" or "or"',
    ),
    (
        "not must be boolean",
        {"entity": "deals", "where": {"combinator": "and", "not": "yes", "rules": []}},
        "where.not",
        "true or false",
    ),
    ("rules must be a list", {"entity": "deals", "where": {"combinator": "and", "rules": {}}}, "where.rules", "a list"),
    ("rule without field", deals({"operator": "=", "value": 1}), "where.rules[0]", "needs a field"),
    (
        "unknown rule key",
        deals({"field": "title", "operator": "=", "value": "x", "values": 1}),
        "where.rules[0].values",
        "unknown key",
    ),
    (
        "bad valueSource",
        deals(rule("value", ">", "x", valueSource="column")),
        "where.rules[0].valueSource",
        "one of value, field, parameter",
    ),
    (
        "field compare wrong operator",
        deals(rule("expected_close_date", "inLast", "created_at", valueSource="field")),
        "where.rules[0].operator",
        "not another field",
    ),
    (
        "field compare wrong type",
        deals(rule("value", ">", "title", valueSource="field")),
        "where.rules[0].value",
        "cannot compare money",
    ),
    (
        "field compare unknown field",
        deals(rule("value", ">", "company.revenue", valueSource="field")),
        "where.rules[0].value",
        "no field 'revenue'",
    ),
    ("unknown relation", deals(rule("customer.name", "=", "x")), "where.rules[0].field", "no relation 'customer'"),
    (
        "field used as relation",
        deals(rule("title.name", "=", "x")),
        "where.rules[0].field",
        "is a field of deals, not a relation",
    ),
    ("relation used as field", deals(rule("company", "=", "x")), "where.rules[0].field", "is a relation"),
    (
        "undeclared custom field",
        {"entity": "companies", "where": where(rule("custom_fields.colour", "=", "x"))},
        "where.rules[0].field",
        "custom field 'colour' of companies is not declared",
    ),
    (
        "unknown related",
        {"entity": "companies", "where": where({"related": "invoices"})},
        "where.rules[0].related",
        "no related 'invoices'",
    ),
    ("ambiguous related", {"entity": "users", "where": where({"related": "deals"})}, "where.rules[0].via", "say which"),
    (
        "bad quantifier",
        {"entity": "companies", "where": where({"related": "deals", "quantifier": "all"})},
        "where.rules[0].quantifier",
        "one of any",
    ),
    (
        "count without operator",
        {"entity": "companies", "where": where({"related": "deals", "quantifier": "count", "value": 1})},
        "where.rules[0].operator",
        "count rule compares",
    ),
    (
        "count with bad value",
        {
            "entity": "companies",
            "where": where({"related": "deals", "quantifier": "count", "operator": ">", "value": "3"}),
        },
        "where.rules[0].value",
        "whole number",
    ),
    (
        "operator on any",
        {"entity": "companies", "where": where({"related": "deals", "quantifier": "any", "operator": ">", "value": 1})},
        "where.rules[0]",
        "belong to quantifier",
    ),
    (
        "related rule inside related where",
        {"entity": "companies", "where": where({"related": "deals", "where": where(rule("nope", "=", 1))})},
        "where.rules[0].where.rules[0].field",
        "deals has no field 'nope'",
    ),
    ("select unknown", {"entity": "deals", "select": ["title", "amount"]}, "select[1]", "no field 'amount'"),
    (
        "select duplicate alias",
        {"entity": "deals", "select": ["title", {"field": "value", "as": "title"}]},
        "select[1]",
        "two columns are named",
    ),
    ("select not a list", {"entity": "deals", "select": "title"}, "select", "must be a list"),
    (
        "select with group_by",
        {"entity": "deals", "select": ["title"], "group_by": ["title"]},
        "select",
        "remove select",
    ),
    (
        "unknown aggregate",
        {"entity": "deals", "aggregates": [{"fn": "median", "field": "value"}]},
        "aggregates[0].fn",
        "unknown function",
    ),
    (
        "sum of text",
        {"entity": "deals", "aggregates": [{"fn": "sum", "field": "title"}]},
        "aggregates[0].fn",
        "needs a number field",
    ),
    ("sum without field", {"entity": "deals", "aggregates": [{"fn": "sum"}]}, "aggregates[0].field", "needs a field"),
    (
        "min of boolean",
        {"entity": "contacts", "aggregates": [{"fn": "min", "field": "is_primary"}]},
        "aggregates[0].fn",
        "number, text or date",
    ),
    (
        "truncate text",
        {"entity": "deals", "group_by": [{"field": "title", "trunc": "month"}]},
        "group_by[0].trunc",
        "only dates",
    ),
    (
        "unknown truncation",
        {"entity": "deals", "group_by": [{"field": "created_at", "trunc": "decade"}]},
        "group_by[0].trunc",
        "unknown truncation",
    ),
    ("having without grouping", {"entity": "deals", "having": where(rule("n", ">", 1))}, "having", "needs group_by"),
    (
        "having unknown name",
        {
            "entity": "deals",
            "group_by": ["title"],
            "aggregates": [{"fn": "count", "as": "n"}],
            "having": where(rule("total", ">", 1)),
        },
        "having.rules[0].field",
        "not a group key or aggregate",
    ),
    (
        "having related",
        {"entity": "deals", "group_by": ["title"], "having": where({"related": "activities"})},
        "having.rules[0]",
        "belong in where",
    ),
    ("order by unknown", {"entity": "deals", "order_by": ["nope"]}, "order_by[0]", "no field 'nope'"),
    (
        "order by non-output when grouped",
        {"entity": "deals", "group_by": ["title"], "order_by": ["value"]},
        "order_by[0]",
        "not a group key or aggregate",
    ),
    (
        "bad direction",
        {"entity": "deals", "order_by": [{"field": "title", "dir": "up"}]},
        "order_by[0].dir",
        '"asc" or "desc"',
    ),
    ("negative limit", {"entity": "deals", "limit": -1}, "limit", "must not be negative"),
    ("limit as text", {"entity": "deals", "limit": "10"}, "limit", "whole number"),
    ("limit as boolean", {"entity": "deals", "limit": True}, "limit", "whole number"),
    ("empty entity", {"entity": "  "}, "entity", "must not be empty"),
    (
        "group key unknown key",
        {"entity": "deals", "group_by": [{"field": "title", "by": "x"}]},
        "group_by[0].by",
        "unknown key",
    ),
    ("aggregate not an object", {"entity": "deals", "aggregates": ["count"]}, "aggregates[0]", "must be an object"),
    ("in with a number", deals(rule("value", "in", 5)), "where.rules[0].value", "needs a list"),
    (
        "duplicate output names",
        {"entity": "deals", "group_by": ["title"], "aggregates": [{"fn": "count", "as": "title"}]},
        "aggregates[0]",
        "two columns are named 'title'",
    ),
    (
        "field compare value not a name",
        deals(rule("value", ">", 5, valueSource="field")),
        "where.rules[0].value",
        "names another field",
    ),
    (
        "related via a key that does not point here",
        {"entity": "companies", "where": where({"related": "deals", "via": "owner_id"})},
        "where.rules[0].related",
        "no related 'deals' via owner_id",
    ),
    (
        "order item without field",
        {"entity": "deals", "order_by": [{"dir": "desc"}]},
        "order_by[0].field",
        "must be a name",
    ),
    ("negative offset", {"entity": "deals", "offset": -5}, "offset", "must not be negative"),
]
