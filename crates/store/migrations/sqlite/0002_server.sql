-- greenroom state, version 2: what `greenroom serve` records.

-- Every accepted webhook delivery, written before it is answered 2xx.
-- (source, delivery_id) is unique: a redelivery is recognised, not re-run.
CREATE TABLE deliveries (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    source        TEXT NOT NULL,
    delivery_id   TEXT NOT NULL,
    event         TEXT NOT NULL,
    action        TEXT,
    repo          TEXT,
    body          TEXT NOT NULL,
    received_at   BIGINT NOT NULL,
    outcome       TEXT NOT NULL,
    detail        TEXT,
    processed_at  BIGINT,
    UNIQUE (source, delivery_id)
);
CREATE INDEX deliveries_unprocessed ON deliveries (outcome, id);

-- Every scheduling decision, with its human reason.
CREATE TABLE decisions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    environment  TEXT NOT NULL,
    at           BIGINT NOT NULL,
    kind         TEXT NOT NULL,
    reason       TEXT NOT NULL,
    triggers     TEXT NOT NULL,
    cycle_id     BIGINT
);
CREATE INDEX decisions_by_environment ON decisions (environment, id);

-- The scheduling policy's state per environment instance (JSON), so a
-- restarted server resumes deferred triggers with their due times.
CREATE TABLE policy_states (
    environment  TEXT PRIMARY KEY,
    state        TEXT NOT NULL,
    updated_at   BIGINT NOT NULL
);
