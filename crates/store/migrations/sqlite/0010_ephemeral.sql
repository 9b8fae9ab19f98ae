-- greenroom state, version 10 (issue #5 point 3): ephemeral environments
-- made from a profile's slots (`greenroom env create NAME --profile P`),
-- and PR previews; torn down when their time ends or their PR closes.

CREATE TABLE ephemeral_environments (
    name        TEXT NOT NULL PRIMARY KEY,
    profile     TEXT NOT NULL,
    slot        TEXT NOT NULL UNIQUE,
    created_by  TEXT NOT NULL,
    reason      TEXT NOT NULL,
    pr          TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
