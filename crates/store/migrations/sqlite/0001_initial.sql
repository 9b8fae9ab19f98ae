-- greenroom state, version 1.
-- Portable SQL on purpose (TEXT, BIGINT, no SQLite-only types) so that the
-- PostgreSQL backend planned for several replicas uses the same schema.
-- Timestamps are BIGINT milliseconds since the Unix epoch, UTC.

CREATE TABLE manifests (
    id          TEXT PRIMARY KEY,
    body        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE cycles (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    environment   TEXT NOT NULL,
    kind          TEXT NOT NULL,
    manifest_id   TEXT REFERENCES manifests (id),
    request       TEXT NOT NULL,
    requested_by  TEXT NOT NULL,
    result        TEXT NOT NULL,
    error         TEXT,
    started_at    BIGINT NOT NULL,
    finished_at   BIGINT,
    host          TEXT NOT NULL,
    pid           BIGINT NOT NULL,
    pid_start     BIGINT NOT NULL,
    lease_token   BIGINT NOT NULL
);
CREATE INDEX cycles_by_environment ON cycles (environment, id);
-- At most one running cycle per environment instance, whoever holds the
-- lease (a partial unique index: SQLite and PostgreSQL both enforce it).
CREATE UNIQUE INDEX one_running_cycle ON cycles (environment) WHERE result = 'running';

CREATE TABLE cycle_components (
    cycle_id    BIGINT NOT NULL REFERENCES cycles (id),
    component   TEXT NOT NULL,
    action      TEXT NOT NULL,
    entry       TEXT NOT NULL,
    artifact    TEXT,
    build       TEXT NOT NULL,
    build_log   TEXT,
    run_log     TEXT,
    outcome     TEXT NOT NULL,
    PRIMARY KEY (cycle_id, component)
);

CREATE TABLE stages (
    cycle_id     BIGINT NOT NULL REFERENCES cycles (id),
    seq          BIGINT NOT NULL,
    name         TEXT NOT NULL,
    component    TEXT,
    started_at   BIGINT NOT NULL,
    finished_at  BIGINT NOT NULL,
    result       TEXT NOT NULL,
    detail       TEXT,
    PRIMARY KEY (cycle_id, seq)
);

-- One row per environment instance ever leased. holder IS NULL means free;
-- token only ever grows (fencing).
CREATE TABLE leases (
    environment  TEXT PRIMARY KEY,
    holder       TEXT,
    reason       TEXT NOT NULL,
    since        BIGINT NOT NULL,
    expires      BIGINT NOT NULL,
    token        BIGINT NOT NULL,
    host         TEXT,
    pid          BIGINT,
    pid_start    BIGINT
);

-- FIFO of `--wait` requests; key is what was asked for (`dev` or `dev-2`).
CREATE TABLE lease_queue (
    ticket       INTEGER PRIMARY KEY AUTOINCREMENT,
    queue_key    TEXT NOT NULL,
    holder       TEXT NOT NULL,
    reason       TEXT NOT NULL,
    enqueued_at  BIGINT NOT NULL,
    host         TEXT NOT NULL,
    pid          BIGINT NOT NULL,
    pid_start    BIGINT NOT NULL
);

-- What runs now, per environment instance and component.
CREATE TABLE deployed (
    environment  TEXT NOT NULL,
    component    TEXT NOT NULL,
    cycle_id     BIGINT NOT NULL,
    entry        TEXT NOT NULL,
    artifact     TEXT,
    state        TEXT NOT NULL,
    pid          BIGINT,
    pid_start    BIGINT,
    log_path     TEXT,
    status_path  TEXT,
    port         BIGINT,
    url          TEXT,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (environment, component)
);

-- The manifest an environment instance runs as a whole (NULL after a
-- cycle that left it mixed).
CREATE TABLE environment_state (
    environment  TEXT PRIMARY KEY,
    manifest_id  TEXT,
    cycle_id     BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE ports (
    environment  TEXT NOT NULL,
    component    TEXT NOT NULL,
    port         BIGINT NOT NULL UNIQUE,
    PRIMARY KEY (environment, component)
);
