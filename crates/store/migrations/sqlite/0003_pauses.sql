-- greenroom state, version 3: pause/resume of scheduled environments.
-- Written by the CLI or the API; the server's scheduler notices changes and
-- feeds them to the policy (triggers while paused are kept, not lost).
CREATE TABLE pauses (
    environment  TEXT PRIMARY KEY,
    paused       BIGINT NOT NULL,
    by_whom      TEXT NOT NULL,
    reason       TEXT NOT NULL,
    since        BIGINT NOT NULL
);
