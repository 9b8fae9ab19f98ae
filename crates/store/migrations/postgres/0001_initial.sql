-- greenroom state, version 1 (PostgreSQL).
-- The same schema as ../sqlite/0001_initial.sql, version for version, so
-- that one copy of every query serves both backends. Differences:
--   * ids are BIGSERIAL (SQLite: INTEGER PRIMARY KEY AUTOINCREMENT); like
--     AUTOINCREMENT they are never reused, but a failed insert consumes one
--     (ids may have gaps);
--   * every TEXT column is COLLATE "C": comparisons and ORDER BY are byte
--     order, as SQLite's BINARY collation, whatever the database's locale,
--     and `id LIKE 'abcd%'` can use the primary key index;
--   * every integer is BIGINT, so it decodes as i64 on both backends.
-- Timestamps are BIGINT milliseconds since the Unix epoch, UTC.

CREATE TABLE manifests (
    id          TEXT COLLATE "C" PRIMARY KEY,
    body        TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE cycles (
    id            BIGSERIAL PRIMARY KEY,
    environment   TEXT COLLATE "C" NOT NULL,
    kind          TEXT COLLATE "C" NOT NULL,
    manifest_id   TEXT COLLATE "C" REFERENCES manifests (id),
    request       TEXT COLLATE "C" NOT NULL,
    requested_by  TEXT COLLATE "C" NOT NULL,
    result        TEXT COLLATE "C" NOT NULL,
    error         TEXT COLLATE "C",
    started_at    BIGINT NOT NULL,
    finished_at   BIGINT,
    host          TEXT COLLATE "C" NOT NULL,
    pid           BIGINT NOT NULL,
    pid_start     BIGINT NOT NULL,
    lease_token   BIGINT NOT NULL
);
CREATE INDEX cycles_by_environment ON cycles (environment, id);
-- At most one running cycle per environment instance, whoever holds the
-- lease (a partial unique index: SQLite and PostgreSQL both enforce it;
-- `Store::create_cycle` maps its violation to `CycleRunning`).
CREATE UNIQUE INDEX one_running_cycle ON cycles (environment) WHERE result = 'running';

CREATE TABLE cycle_components (
    cycle_id    BIGINT NOT NULL REFERENCES cycles (id),
    component   TEXT COLLATE "C" NOT NULL,
    action      TEXT COLLATE "C" NOT NULL,
    entry       TEXT COLLATE "C" NOT NULL,
    artifact    TEXT COLLATE "C",
    build       TEXT COLLATE "C" NOT NULL,
    build_log   TEXT COLLATE "C",
    run_log     TEXT COLLATE "C",
    outcome     TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (cycle_id, component)
);

CREATE TABLE stages (
    cycle_id     BIGINT NOT NULL REFERENCES cycles (id),
    seq          BIGINT NOT NULL,
    name         TEXT COLLATE "C" NOT NULL,
    component    TEXT COLLATE "C",
    started_at   BIGINT NOT NULL,
    finished_at  BIGINT NOT NULL,
    result       TEXT COLLATE "C" NOT NULL,
    detail       TEXT COLLATE "C",
    PRIMARY KEY (cycle_id, seq)
);

-- One row per environment instance ever leased. holder IS NULL means free;
-- token only ever grows (fencing).
CREATE TABLE leases (
    environment  TEXT COLLATE "C" PRIMARY KEY,
    holder       TEXT COLLATE "C",
    reason       TEXT COLLATE "C" NOT NULL,
    since        BIGINT NOT NULL,
    expires      BIGINT NOT NULL,
    token        BIGINT NOT NULL,
    host         TEXT COLLATE "C",
    pid          BIGINT,
    pid_start    BIGINT
);

-- FIFO of `--wait` requests; key is what was asked for (`dev` or `dev-2`).
CREATE TABLE lease_queue (
    ticket       BIGSERIAL PRIMARY KEY,
    queue_key    TEXT COLLATE "C" NOT NULL,
    holder       TEXT COLLATE "C" NOT NULL,
    reason       TEXT COLLATE "C" NOT NULL,
    enqueued_at  BIGINT NOT NULL,
    host         TEXT COLLATE "C" NOT NULL,
    pid          BIGINT NOT NULL,
    pid_start    BIGINT NOT NULL
);

-- What runs now, per environment instance and component.
CREATE TABLE deployed (
    environment  TEXT COLLATE "C" NOT NULL,
    component    TEXT COLLATE "C" NOT NULL,
    cycle_id     BIGINT NOT NULL,
    entry        TEXT COLLATE "C" NOT NULL,
    artifact     TEXT COLLATE "C",
    state        TEXT COLLATE "C" NOT NULL,
    pid          BIGINT,
    pid_start    BIGINT,
    log_path     TEXT COLLATE "C",
    status_path  TEXT COLLATE "C",
    port         BIGINT,
    url          TEXT COLLATE "C",
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (environment, component)
);

-- The manifest an environment instance runs as a whole (NULL after a
-- cycle that left it mixed).
CREATE TABLE environment_state (
    environment  TEXT COLLATE "C" PRIMARY KEY,
    manifest_id  TEXT COLLATE "C",
    cycle_id     BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE ports (
    environment  TEXT COLLATE "C" NOT NULL,
    component    TEXT COLLATE "C" NOT NULL,
    port         BIGINT NOT NULL UNIQUE,
    PRIMARY KEY (environment, component)
);
