-- greenroom state, version 8 (issue #5 point 6): an admin's override of
-- the deploy blockers (freeze windows, firing alerts) of an environment,
-- until a given time.

CREATE TABLE blocker_overrides (
    environment  TEXT NOT NULL PRIMARY KEY,
    granted_by   TEXT NOT NULL,
    reason       TEXT NOT NULL,
    granted_at   BIGINT NOT NULL,
    until_at     BIGINT NOT NULL
);
