-- greenroom state, version 10 (issue #5 point 3): ephemeral environments
-- made from a profile's slots (`greenroom env create NAME --profile P`),
-- and PR previews; torn down when their time ends or their PR closes.

CREATE TABLE ephemeral_environments (
    name        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    profile     TEXT COLLATE "C" NOT NULL,
    slot        TEXT COLLATE "C" NOT NULL UNIQUE,
    created_by  TEXT COLLATE "C" NOT NULL,
    reason      TEXT COLLATE "C" NOT NULL,
    pr          TEXT COLLATE "C",
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
