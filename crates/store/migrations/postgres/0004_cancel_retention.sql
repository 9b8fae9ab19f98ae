-- greenroom state, version 4 (PostgreSQL): cancellation requests and retention.
-- Same schema as ../sqlite/0004_cancel_retention.sql (differences: see 0001_initial.sql).

-- A cancel asked for by someone (CLI, API, a comment command): the process
-- running the cycle sees it before its next step, wherever it runs.
ALTER TABLE cycles ADD COLUMN cancel_requested_by TEXT COLLATE "C";
ALTER TABLE cycles ADD COLUMN cancel_reason TEXT COLLATE "C";
ALTER TABLE cycles ADD COLUMN cancel_requested_at BIGINT;

-- Retention deletes old finished cycles by age; these keep it cheap.
CREATE INDEX cycles_by_finish ON cycles (finished_at);
CREATE INDEX deliveries_by_received ON deliveries (received_at);
CREATE INDEX decisions_by_at ON decisions (at);
