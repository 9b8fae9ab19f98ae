-- greenroom state, version 5: what greenroom records about pull requests
-- (issue #4): approvals and exclusions, the comment commands it answered,
-- and the last body of each comment (an edit runs only what is new).

CREATE TABLE pr_states (
    repo             TEXT NOT NULL,
    number           BIGINT NOT NULL,
    approved_by      TEXT,
    approved_at      BIGINT,
    excluded_by      TEXT,
    excluded_reason  TEXT,
    excluded_at      BIGINT,
    PRIMARY KEY (repo, number)
);

CREATE TABLE pr_commands (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    repo        TEXT NOT NULL,
    number      BIGINT NOT NULL,
    comment_id  BIGINT NOT NULL,
    author      TEXT NOT NULL,
    command     TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    detail      TEXT NOT NULL,
    at          BIGINT NOT NULL
);
CREATE INDEX pr_commands_by_pr ON pr_commands (repo, number, id);

CREATE TABLE comment_bodies (
    source      TEXT NOT NULL,
    comment_id  BIGINT NOT NULL,
    body        TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (source, comment_id)
);
