-- The audit log also records events that are not a change to one record: exports (who
-- exported which query, how many rows), sign-ins and permission changes. Such rows name the
-- entity they concern and have no record id.
ALTER TABLE audit_log ALTER COLUMN entity_id DROP NOT NULL;
ALTER TABLE audit_log DROP CONSTRAINT audit_log_operation_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_operation_check
    CHECK (operation IN ('create', 'update', 'delete', 'restore', 'move', 'export'));
