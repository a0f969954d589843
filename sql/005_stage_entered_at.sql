-- When a deal entered its current stage: the pipeline board's "age in stage".
-- DealService.move sets it on every real stage change; new deals take the default. Deals that
-- exist already entered their stage at their latest stage change, else when they were created.

ALTER TABLE deals ADD COLUMN stage_entered_at timestamptz NOT NULL DEFAULT now();

UPDATE deals d SET stage_entered_at = coalesce(
    (SELECT max(a.created_at) FROM activities a WHERE a.deal_id = d.id AND a.type = 'stage_change'),
    d.created_at);

-- A board column is a stage's first cards in the board's sort: these indexes hand them over in
-- order (highest value, closing soonest, longest in stage) instead of sorting the whole stage.
CREATE INDEX deals_stage_value_idx ON deals (stage_id, value DESC NULLS LAST, id) WHERE deleted_at IS NULL;
CREATE INDEX deals_stage_closing_idx ON deals (stage_id, expected_close_date, id) WHERE deleted_at IS NULL;
CREATE INDEX deals_stage_entered_idx ON deals (stage_id, stage_entered_at, id) WHERE deleted_at IS NULL;
