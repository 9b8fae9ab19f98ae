-- greenroom state, version 2 (PostgreSQL): what `greenroom serve` records.
-- Same schema as ../sqlite/0002_server.sql (differences: see 0001_initial.sql).

-- Every accepted webhook delivery, written before it is answered 2xx.
-- (source, delivery_id) is unique: a redelivery is recognised, not re-run.
CREATE TABLE deliveries (
    id            BIGSERIAL PRIMARY KEY,
    source        TEXT COLLATE "C" NOT NULL,
    delivery_id   TEXT COLLATE "C" NOT NULL,
    event         TEXT COLLATE "C" NOT NULL,
    action        TEXT COLLATE "C",
    repo          TEXT COLLATE "C",
    body          TEXT COLLATE "C" NOT NULL,
    received_at   BIGINT NOT NULL,
    outcome       TEXT COLLATE "C" NOT NULL,
    detail        TEXT COLLATE "C",
    processed_at  BIGINT,
    UNIQUE (source, delivery_id)
);
CREATE INDEX deliveries_unprocessed ON deliveries (outcome, id);

-- Every scheduling decision, with its human reason.
CREATE TABLE decisions (
    id           BIGSERIAL PRIMARY KEY,
    environment  TEXT COLLATE "C" NOT NULL,
    at           BIGINT NOT NULL,
    kind         TEXT COLLATE "C" NOT NULL,
    reason       TEXT COLLATE "C" NOT NULL,
    triggers     TEXT COLLATE "C" NOT NULL,
    cycle_id     BIGINT
);
CREATE INDEX decisions_by_environment ON decisions (environment, id);

-- The scheduling policy's state per environment instance (JSON), so a
-- restarted server resumes deferred triggers with their due times.
CREATE TABLE policy_states (
    environment  TEXT COLLATE "C" PRIMARY KEY,
    state        TEXT COLLATE "C" NOT NULL,
    updated_at   BIGINT NOT NULL
);
