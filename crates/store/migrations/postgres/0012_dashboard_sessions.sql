-- greenroom state, version 12 (issue #7): dashboard sign-ins outlive a
-- server restart. Neither the session id (the cookie) nor the API token is
-- stored: only their SHA-256 digests, so this table lets nobody sign in;
-- a session ends when its user's token changes.

CREATE TABLE dashboard_sessions (
    id            TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    user_name     TEXT COLLATE "C" NOT NULL,
    token_digest  TEXT COLLATE "C" NOT NULL,
    csrf          TEXT COLLATE "C" NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX dashboard_sessions_by_expiry ON dashboard_sessions (expires_at);
