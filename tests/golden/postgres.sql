-- text =
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.title = 'Acme renewal'

-- text != excludes nulls
SELECT companies.name AS name 
FROM companies 
WHERE companies.deleted_at IS NULL AND companies.industry != 'Software'

-- text <
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.title < 'Globex'

-- text between reversed
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.title BETWEEN 'Acme' AND 'O'

-- contains is case-insensitive
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.title ILIKE '%RENEWAL%' ESCAPE '\'

-- contains % literally
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.title ILIKE '%50\%%' ESCAPE '\'

-- contains _ literally
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.title ILIKE '%t\_p%' ESCAPE '\'

-- contains backslash
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.title ILIKE '%\\ back%' ESCAPE '\'

-- beginsWith
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.title ILIKE 'glob%' ESCAPE '\'

-- endsWith quote
SELECT companies.name AS name 
FROM companies 
WHERE companies.deleted_at IS NULL AND companies.name ILIKE '%''brien \\ sons' ESCAPE '\'

-- doesNotContain excludes nulls
SELECT companies.name AS name 
FROM companies 
WHERE companies.deleted_at IS NULL AND companies.industry NOT ILIKE '%soft%' ESCAPE '\'

-- doesNotBeginWith
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.title NOT ILIKE 'Acme%' ESCAPE '\'

-- doesNotEndWith
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.title NOT ILIKE '%DEAL' ESCAPE '\'

-- text in as csv string
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.title IN ('Acme renewal', 'RENEWAL big')

-- text notIn
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND (deals.title NOT IN ('Acme renewal'))

-- sql fragment is just text
SELECT companies.name AS name 
FROM companies 
WHERE companies.deleted_at IS NULL AND companies.name ILIKE '%; DROP TABLE deals;--%' ESCAPE '\'

-- unicode contains
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.title ILIKE '%ÆØÅ%' ESCAPE '\'

-- money >= number
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.value >= 80000

-- money < numeric string
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.value < 300.01

-- money = cents
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.value = 75000.5

-- money between csv
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.value BETWEEN 10000 AND 1000000

-- money notBetween
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.value NOT BETWEEN 1000 AND 1000000

-- money in
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.value IN (300, 12000)

-- money null
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.value IS NULL

-- integer notNull
SELECT contacts.last_name AS last_name 
FROM contacts 
WHERE contacts.deleted_at IS NULL AND contacts.lead_score IS NOT NULL

-- integer notIn
SELECT contacts.last_name AS last_name 
FROM contacts 
WHERE contacts.deleted_at IS NULL AND (contacts.lead_score NOT IN (80, 45))

-- field to field
SELECT deals.title AS title, company.name AS "company.name" 
FROM deals LEFT OUTER JOIN companies AS company ON deals.company_id = company.id 
WHERE deals.deleted_at IS NULL AND deals.value > company.annual_revenue

-- enum =
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.priority = 'high'

-- enum in
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.type IN ('renewal', 'upgrade')

-- enum notIn
SELECT companies.name AS name 
FROM companies 
WHERE companies.deleted_at IS NULL AND (companies.size NOT IN ('large'))

-- enum null
SELECT companies.name AS name 
FROM companies 
WHERE companies.deleted_at IS NULL AND companies.size IS NULL

-- boolean = string
SELECT contacts.last_name AS last_name 
FROM contacts 
WHERE contacts.deleted_at IS NULL AND contacts.is_primary = true

-- boolean !=
SELECT contacts.last_name AS last_name 
FROM contacts 
WHERE contacts.deleted_at IS NULL AND contacts.is_primary != true

-- uuid =
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.company_id = '00000000-0000-0002-0000-000000000002'

-- uuid in
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.owner_id IN ('00000000-0000-0001-0000-000000000001')

-- uuid null
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.owner_id IS NULL

-- json null
SELECT companies.name AS name 
FROM companies 
WHERE companies.deleted_at IS NULL AND companies.address IS NULL

-- date =
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.expected_close_date = '2026-06-17'

-- date > 
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.expected_close_date > '2026-06-17'

-- date between
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.expected_close_date BETWEEN '2026-06-01' AND '2026-06-30'

-- date inLast 30 days
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.expected_close_date >= '2026-05-18' AND deals.expected_close_date < '2026-06-18'

-- date inNext 1 month
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.expected_close_date >= '2026-06-17' AND deals.expected_close_date < '2026-07-18'

-- date olderThan 1 month
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.expected_close_date < '2026-05-17'

-- date thisMonth
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.expected_close_date >= '2026-06-01' AND deals.expected_close_date < '2026-07-01'

-- date lastMonth
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.actual_close_date >= '2026-05-01' AND deals.actual_close_date < '2026-06-01'

-- date nextQuarter
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.expected_close_date >= '2026-07-01' AND deals.expected_close_date < '2026-10-01'

-- date thisWeek
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.expected_close_date >= '2026-06-15' AND deals.expected_close_date < '2026-06-22'

-- date lastYear
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.created_at >= '2025-01-01 00:00:00+00:00' AND deals.created_at < '2026-01-01 00:00:00+00:00'

-- timestamp today
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.created_at >= '2026-06-17 00:00:00+00:00' AND deals.created_at < '2026-06-18 00:00:00+00:00'

-- timestamp inLast 1 day is exclusive of now
SELECT activities.subject AS subject 
FROM activities 
WHERE activities.deleted_at IS NULL AND activities.completed_at >= '2026-06-16 12:00:00+00:00' AND activities.completed_at < '2026-06-17 12:00:00+00:00'

-- timestamp inNext week
SELECT activities.subject AS subject 
FROM activities 
WHERE activities.deleted_at IS NULL AND activities.due_at >= '2026-06-17 12:00:00+00:00' AND activities.due_at < '2026-06-24 12:00:00+00:00'

-- timestamp >= date string
SELECT activities.subject AS subject 
FROM activities 
WHERE activities.deleted_at IS NULL AND activities.completed_at >= '2026-06-16 00:00:00+00:00'

-- timestamp yesterday
SELECT activities.subject AS subject 
FROM activities 
WHERE activities.deleted_at IS NULL AND activities.completed_at >= '2026-06-16 00:00:00+00:00' AND activities.completed_at < '2026-06-17 00:00:00+00:00'

-- nested or in and
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.value > 1000 AND (deals.title ILIKE '%acme%' ESCAPE '\' OR deals.priority = 'urgent')

-- not group
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND NOT (deals.title ILIKE '%acme%' ESCAPE '\' OR deals.value IS NULL)

-- empty group filters nothing
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL

-- no where at all
SELECT companies.name AS name 
FROM companies 
WHERE companies.deleted_at IS NULL

-- join many-to-one
SELECT deals.title AS title, company.name AS "company.name", stage.name AS "stage.name" 
FROM deals LEFT OUTER JOIN companies AS company ON deals.company_id = company.id LEFT OUTER JOIN pipeline_stages AS stage ON deals.stage_id = stage.id 
WHERE deals.deleted_at IS NULL AND company.industry IN ('Software', 'Fintech')

-- join follows deleted company
SELECT deals.title AS title, company.name AS "company.name" 
FROM deals LEFT OUTER JOIN companies AS company ON deals.company_id = company.id 
WHERE deals.deleted_at IS NULL AND company.name = 'Ghost Corp'

-- two-step path
SELECT deals.title AS title, company__owner.full_name AS "company.owner.full_name" 
FROM deals LEFT OUTER JOIN companies AS company ON deals.company_id = company.id LEFT OUTER JOIN users AS company__owner ON company.owner_id = company__owner.id 
WHERE deals.deleted_at IS NULL AND company__owner.email = 'alice@example.com'

-- null through a missing join
SELECT deals.title AS title 
FROM deals LEFT OUTER JOIN contacts AS contact ON deals.contact_id = contact.id 
WHERE deals.deleted_at IS NULL AND contact.email IS NULL

-- related none: no activity in 30 days
SELECT companies.name AS name 
FROM companies 
WHERE companies.deleted_at IS NULL AND NOT (EXISTS (SELECT 1 AS anon_1 
FROM activities AS activities_1 
WHERE activities_1.company_id = companies.id AND activities_1.deleted_at IS NULL AND activities_1.completed_at >= '2026-05-18 12:00:00+00:00' AND activities_1.completed_at < '2026-06-17 12:00:00+00:00'))

-- related any
SELECT contacts.last_name AS last_name 
FROM contacts 
WHERE contacts.deleted_at IS NULL AND (EXISTS (SELECT 1 AS anon_1 
FROM deals AS deals_1 
WHERE deals_1.contact_id = contacts.id AND deals_1.deleted_at IS NULL))

-- related count > 2
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL AND (SELECT count(*) AS count_1 
FROM activities AS activities_1 
WHERE activities_1.deal_id = deals.id AND activities_1.deleted_at IS NULL) > 2

-- related count = 0 with filter
SELECT companies.name AS name 
FROM companies 
WHERE companies.deleted_at IS NULL AND (SELECT count(*) AS count_1 
FROM deals AS deals_1 LEFT OUTER JOIN pipeline_stages AS pipeline_stages_1 ON deals_1.stage_id = pipeline_stages_1.id 
WHERE deals_1.company_id = companies.id AND deals_1.deleted_at IS NULL AND pipeline_stages_1.is_closed_won = true) = 0

-- related via owner
SELECT users.email AS email 
FROM users 
WHERE users.deleted_at IS NULL AND (SELECT count(*) AS count_1 
FROM deals AS deals_1 
WHERE deals_1.owner_id = users.id AND deals_1.deleted_at IS NULL) >= 3

-- nested related
SELECT companies.name AS name 
FROM companies 
WHERE companies.deleted_at IS NULL AND (EXISTS (SELECT 1 AS anon_1 
FROM deals AS deals_1 
WHERE deals_1.company_id = companies.id AND deals_1.deleted_at IS NULL AND (EXISTS (SELECT 1 AS anon_2 
FROM activities AS activities_1 
WHERE activities_1.deal_id = deals_1.id AND activities_1.deleted_at IS NULL AND activities_1.type = 'meeting'))))

-- custom text field
SELECT companies.name AS name, companies.custom_fields ->> 'tier' AS "custom_fields.tier" 
FROM companies 
WHERE companies.deleted_at IS NULL AND (companies.custom_fields ->> 'tier') = 'gold'

-- custom number field
SELECT companies.name AS name 
FROM companies 
WHERE companies.deleted_at IS NULL AND CASE WHEN ((companies.custom_fields ->> 'seats') ~ '^-?[0-9]{1,18}$') THEN CAST(companies.custom_fields ->> 'seats' AS BIGINT) END > 10

-- all fields by default
SELECT pipeline_stages.id AS id, pipeline_stages.name AS name, pipeline_stages.description AS description, pipeline_stages.position AS position, pipeline_stages.probability AS probability, pipeline_stages.is_active AS is_active, pipeline_stages.is_closed_won AS is_closed_won, pipeline_stages.is_closed_lost AS is_closed_lost, CAST(pipeline_stages.required_fields AS TEXT) AS required_fields, pipeline_stages.colour AS colour, pipeline_stages.created_at AS created_at, pipeline_stages.updated_at AS updated_at, creator.full_name AS creator, updater.full_name AS updater, pipeline_stages.deleted_at AS deleted_at, pipeline_stages.version AS version, CAST(pipeline_stages.custom_fields AS TEXT) AS custom_fields 
FROM pipeline_stages LEFT OUTER JOIN users AS creator ON pipeline_stages.created_by = creator.id LEFT OUTER JOIN users AS updater ON pipeline_stages.updated_by = updater.id 
WHERE pipeline_stages.deleted_at IS NULL AND pipeline_stages.name = 'Won'

-- deals show names by default
SELECT deals.id AS id, company.name AS company, contact.first_name || ' ' || contact.last_name AS contact, stage.name AS stage, owner.full_name AS owner, deals.title AS title, deals.description AS description, deals.value AS value, deals.currency AS currency, deals.probability AS probability, deals.weighted_value AS weighted_value, deals.expected_close_date AS expected_close_date, deals.actual_close_date AS actual_close_date, deals.first_contact_date AS first_contact_date, deals.last_activity_at AS last_activity_at, deals.lead_source AS lead_source, deals.campaign AS campaign, deals.type AS type, deals.priority AS priority, deals.close_reason AS close_reason, deals.created_at AS created_at, deals.updated_at AS updated_at, creator.full_name AS creator, updater.full_name AS updater, deals.deleted_at AS deleted_at, deals.version AS version, CAST(deals.custom_fields AS TEXT) AS custom_fields, deals.stage_entered_at AS stage_entered_at, product.name AS product, deals.tags AS tags 
FROM deals LEFT OUTER JOIN companies AS company ON deals.company_id = company.id LEFT OUTER JOIN contacts AS contact ON deals.contact_id = contact.id LEFT OUTER JOIN pipeline_stages AS stage ON deals.stage_id = stage.id LEFT OUTER JOIN users AS owner ON deals.owner_id = owner.id LEFT OUTER JOIN users AS creator ON deals.created_by = creator.id LEFT OUTER JOIN users AS updater ON deals.updated_by = updater.id LEFT OUTER JOIN products AS product ON deals.product_id = product.id 
WHERE deals.deleted_at IS NULL AND deals.value >= 100

-- activities show names by default
SELECT activities.id AS id, deal.title AS deal, contact.first_name || ' ' || contact.last_name AS contact, company.name AS company, owner.full_name AS owner, activities.type AS type, activities.subject AS subject, activities.description AS description, activities.scheduled_at AS scheduled_at, activities.completed_at AS completed_at, activities.due_at AS due_at, activities.duration_minutes AS duration_minutes, activities.status AS status, activities.priority AS priority, activities.external_id AS external_id, activities.external_source AS external_source, CAST(activities.external_data AS TEXT) AS external_data, activities.created_at AS created_at, activities.updated_at AS updated_at, creator.full_name AS creator, updater.full_name AS updater, activities.deleted_at AS deleted_at, activities.version AS version, CAST(activities.custom_fields AS TEXT) AS custom_fields 
FROM activities LEFT OUTER JOIN deals AS deal ON activities.deal_id = deal.id LEFT OUTER JOIN contacts AS contact ON activities.contact_id = contact.id LEFT OUTER JOIN companies AS company ON activities.company_id = company.id LEFT OUTER JOIN users AS owner ON activities.owner_id = owner.id LEFT OUTER JOIN users AS creator ON activities.created_by = creator.id LEFT OUTER JOIN users AS updater ON activities.updated_by = updater.id 
WHERE activities.deleted_at IS NULL AND activities.type IN ('call', 'task')

-- default columns sort by a name
SELECT contacts.id AS id, company.name AS company, contacts.first_name AS first_name, contacts.last_name AS last_name, contacts.email AS email, contacts.phone AS phone, contacts.job_title AS job_title, contacts.preferred_contact_method AS preferred_contact_method, contacts.timezone AS timezone, contacts.is_primary AS is_primary, contacts.lead_source AS lead_source, contacts.lead_score AS lead_score, contacts.lifecycle_stage AS lifecycle_stage, CAST(contacts.social_profiles AS TEXT) AS social_profiles, owner.full_name AS owner, contacts.created_at AS created_at, contacts.updated_at AS updated_at, creator.full_name AS creator, updater.full_name AS updater, contacts.deleted_at AS deleted_at, contacts.version AS version, CAST(contacts.custom_fields AS TEXT) AS custom_fields, contacts.tags AS tags 
FROM contacts LEFT OUTER JOIN companies AS company ON contacts.company_id = company.id LEFT OUTER JOIN users AS owner ON contacts.owner_id = owner.id LEFT OUTER JOIN users AS creator ON contacts.created_by = creator.id LEFT OUTER JOIN users AS updater ON contacts.updated_by = updater.id 
WHERE contacts.deleted_at IS NULL ORDER BY company DESC NULLS LAST, last_name ASC NULLS LAST, contacts.id 
 LIMIT 3

-- default columns keep ids selectable
SELECT deals.title AS title, deals.company_id AS company_id, company.name AS "company.name" 
FROM deals LEFT OUTER JOIN companies AS company ON deals.company_id = company.id 
WHERE deals.deleted_at IS NULL AND company.name ILIKE 'Acme%' ESCAPE '\'

-- select with alias and types
SELECT deals.id AS id, deals.value AS value, deals.probability AS probability, deals.expected_close_date AS expected_close_date, deals.created_at AS created_at, stage.is_closed_won AS won, deals.type AS type 
FROM deals LEFT OUTER JOIN pipeline_stages AS stage ON deals.stage_id = stage.id 
WHERE deals.deleted_at IS NULL AND deals.title = 'Acme renewal'

-- order and limit
SELECT deals.title AS title, deals.value AS value 
FROM deals 
WHERE deals.deleted_at IS NULL ORDER BY value DESC NULLS LAST, deals.id 
 LIMIT 3

-- order by unselected field with offset
SELECT deals.title AS title 
FROM deals 
WHERE deals.deleted_at IS NULL ORDER BY deals.expected_close_date ASC NULLS LAST, title ASC NULLS LAST, deals.id 
 LIMIT 2 OFFSET 2

-- group by stage with aggregates
SELECT stage.name AS "stage.name", count(*) AS deals, sum(deals.value) AS total, CAST(avg(deals.value) AS DOUBLE PRECISION) AS mean, min(deals.expected_close_date) AS first_close, max(deals.title) AS last_title, count(deals.value) AS valued, count(DISTINCT deals.company_id) AS companies 
FROM deals LEFT OUTER JOIN pipeline_stages AS stage ON deals.stage_id = stage.id 
WHERE deals.deleted_at IS NULL GROUP BY stage.name

-- group by month with having and order
SELECT CAST(date_trunc('month', timezone('UTC', deals.created_at)) AS DATE) AS created_at_month, count(*) AS n 
FROM deals 
WHERE deals.deleted_at IS NULL GROUP BY CAST(date_trunc('month', timezone('UTC', deals.created_at)) AS DATE) 
HAVING count(*) >= 2 ORDER BY CAST(date_trunc('month', timezone('UTC', deals.created_at)) AS DATE) DESC NULLS LAST

-- group by date quarter and week
SELECT CAST(date_trunc('quarter', CAST(deals.expected_close_date AS TIMESTAMP WITHOUT TIME ZONE)) AS DATE) AS expected_close_date_quarter, CAST(date_trunc('week', CAST(deals.expected_close_date AS TIMESTAMP WITHOUT TIME ZONE)) AS DATE) AS week, sum(deals.value) AS total 
FROM deals 
WHERE deals.deleted_at IS NULL GROUP BY CAST(date_trunc('quarter', CAST(deals.expected_close_date AS TIMESTAMP WITHOUT TIME ZONE)) AS DATE), CAST(date_trunc('week', CAST(deals.expected_close_date AS TIMESTAMP WITHOUT TIME ZONE)) AS DATE)

-- group by owner with filter on aggregate sum
SELECT owner.email AS "owner.email", sum(deals.value) AS total 
FROM deals LEFT OUTER JOIN pipeline_stages AS stage ON deals.stage_id = stage.id LEFT OUTER JOIN users AS owner ON deals.owner_id = owner.id 
WHERE deals.deleted_at IS NULL AND stage.is_closed_lost = false GROUP BY owner.email 
HAVING sum(deals.value) > 100000

-- aggregates without group_by
SELECT count(*) AS count, sum(activities.duration_minutes) AS minutes 
FROM activities 
WHERE activities.deleted_at IS NULL

-- win rate by industry
SELECT company.industry AS "company.industry", count(*) AS won 
FROM deals LEFT OUTER JOIN pipeline_stages AS stage ON deals.stage_id = stage.id LEFT OUTER JOIN companies AS company ON deals.company_id = company.id 
WHERE deals.deleted_at IS NULL AND stage.is_closed_won = true GROUP BY company.industry ORDER BY company.industry ASC NULLS LAST

-- rqb ids-and-not-false
SELECT deals.id AS id 
FROM deals LEFT OUTER JOIN pipeline_stages AS stage ON deals.stage_id = stage.id 
WHERE deals.deleted_at IS NULL AND deals.value >= 50000 AND stage.name = 'Won'

-- rqb disabled-rule
SELECT deals.id AS id 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.value >= 50000

-- rqb disabled-group
SELECT deals.id AS id 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.value >= 50000

-- rqb disabled-root
SELECT deals.id AS id 
FROM deals 
WHERE deals.deleted_at IS NULL

-- rqb ic-not
SELECT deals.id AS id 
FROM deals LEFT OUTER JOIN pipeline_stages AS stage ON deals.stage_id = stage.id 
WHERE deals.deleted_at IS NULL AND NOT (deals.value >= 50000 OR stage.name = 'Won')

-- rqb ic-precedence
SELECT deals.id AS id 
FROM deals LEFT OUTER JOIN companies AS company ON deals.company_id = company.id LEFT OUTER JOIN pipeline_stages AS stage ON deals.stage_id = stage.id 
WHERE deals.deleted_at IS NULL AND (deals.value >= 50000 AND company.name ILIKE '%acme%' ESCAPE '\' OR stage.name = 'Won')

-- rqb ic-precedence-right
SELECT deals.id AS id 
FROM deals LEFT OUTER JOIN pipeline_stages AS stage ON deals.stage_id = stage.id 
WHERE deals.deleted_at IS NULL AND (stage.name = 'Won' OR stage.name = 'Negotiation' AND deals.value >= 50000)

-- rqb ic-disabled-takes-its-combinator
SELECT deals.id AS id 
FROM deals LEFT OUTER JOIN pipeline_stages AS stage ON deals.stage_id = stage.id 
WHERE deals.deleted_at IS NULL AND (deals.value >= 50000 OR stage.name = 'Won')

-- rqb ic-nested
SELECT deals.id AS id 
FROM deals LEFT OUTER JOIN pipeline_stages AS stage ON deals.stage_id = stage.id 
WHERE deals.deleted_at IS NULL AND deals.value >= 50000 AND (stage.name = 'Won' OR stage.name = 'Negotiation')

-- parameter 0: value >=
SELECT deals.id AS id 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.value >= 50000

-- parameter 1: value between
SELECT deals.id AS id 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.value BETWEEN 10000 AND 90000

-- parameter 2: value between
SELECT deals.id AS id 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.value BETWEEN 10000 AND 90000

-- parameter 3: stage.name in
SELECT deals.id AS id 
FROM deals LEFT OUTER JOIN pipeline_stages AS stage ON deals.stage_id = stage.id 
WHERE deals.deleted_at IS NULL AND stage.name IN ('Won', 'Lost')

-- parameter 4: stage.name notIn
SELECT deals.id AS id 
FROM deals LEFT OUTER JOIN pipeline_stages AS stage ON deals.stage_id = stage.id 
WHERE deals.deleted_at IS NULL AND (stage.name NOT IN ('Won', 'Lost'))

-- parameter 5: title contains
SELECT deals.id AS id 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.title ILIKE '%\%%' ESCAPE '\'

-- parameter 6: expected_close_date <
SELECT deals.id AS id 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.expected_close_date < '2026-07-01'

-- parameter 7: created_at inLast
SELECT deals.id AS id 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.created_at >= '2026-03-19 12:00:00+00:00' AND deals.created_at < '2026-06-17 12:00:00+00:00'

-- parameter 8: type =
SELECT deals.id AS id 
FROM deals 
WHERE deals.deleted_at IS NULL AND deals.type = 'renewal'

-- multiselect selected and has
SELECT companies.name AS name, crm_json_texts(companies.custom_fields -> 'channels') AS "custom_fields.channels" 
FROM companies 
WHERE companies.deleted_at IS NULL AND (EXISTS (SELECT 1 AS anon_1 
FROM unnest(crm_json_texts(companies.custom_fields -> 'channels')) AS element(value) 
WHERE lower(element.value) = lower('web')))

-- multiselect match mode
SELECT companies.name AS name 
FROM companies 
WHERE companies.deleted_at IS NULL AND (SELECT count(*) AS count_1 
FROM unnest(crm_json_texts(companies.custom_fields -> 'channels')) AS element(value) 
WHERE element.value IN ('web', 'phone')) >= 2
