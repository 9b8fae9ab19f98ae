-- greenroom state, version 4: cancellation requests and retention.

-- A cancel asked for by someone (CLI, API, a comment command): the process
-- running the cycle sees it before its next step, wherever it runs.
ALTER TABLE cycles ADD COLUMN cancel_requested_by TEXT;
ALTER TABLE cycles ADD COLUMN cancel_reason TEXT;
ALTER TABLE cycles ADD COLUMN cancel_requested_at BIGINT;

-- Retention deletes old finished cycles by age; these keep it cheap.
CREATE INDEX cycles_by_finish ON cycles (finished_at);
CREATE INDEX deliveries_by_received ON deliveries (received_at);
CREATE INDEX decisions_by_at ON decisions (at);
