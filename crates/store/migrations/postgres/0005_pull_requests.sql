-- greenroom state, version 5 (PostgreSQL): what greenroom records about pull
-- requests (issue #4). Same schema as ../sqlite/0005_pull_requests.sql
-- (differences: see 0001_initial.sql).

CREATE TABLE pr_states (
    repo             TEXT COLLATE "C" NOT NULL,
    number           BIGINT NOT NULL,
    approved_by      TEXT COLLATE "C",
    approved_at      BIGINT,
    excluded_by      TEXT COLLATE "C",
    excluded_reason  TEXT COLLATE "C",
    excluded_at      BIGINT,
    PRIMARY KEY (repo, number)
);

CREATE TABLE pr_commands (
    id          BIGSERIAL PRIMARY KEY,
    repo        TEXT COLLATE "C" NOT NULL,
    number      BIGINT NOT NULL,
    comment_id  BIGINT NOT NULL,
    author      TEXT COLLATE "C" NOT NULL,
    command     TEXT COLLATE "C" NOT NULL,
    outcome     TEXT COLLATE "C" NOT NULL,
    detail      TEXT COLLATE "C" NOT NULL,
    at          BIGINT NOT NULL
);
CREATE INDEX pr_commands_by_pr ON pr_commands (repo, number, id);

CREATE TABLE comment_bodies (
    source      TEXT COLLATE "C" NOT NULL,
    comment_id  BIGINT NOT NULL,
    body        TEXT COLLATE "C" NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (source, comment_id)
);
