-- greenroom state, version 3 (PostgreSQL): pause/resume of scheduled environments.
-- Same schema as ../sqlite/0003_pauses.sql (differences: see 0001_initial.sql).
-- Written by the CLI or the API; the server's scheduler notices changes and
-- feeds them to the policy (triggers while paused are kept, not lost).
CREATE TABLE pauses (
    environment  TEXT COLLATE "C" PRIMARY KEY,
    paused       BIGINT NOT NULL,
    by_whom      TEXT COLLATE "C" NOT NULL,
    reason       TEXT COLLATE "C" NOT NULL,
    since        BIGINT NOT NULL
);
