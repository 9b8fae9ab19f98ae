-- greenroom state, version 6 (issue #5): manifests rolled back as faulty
-- (never deployed again by the schedule), and the audit trail of every
-- action that changes an environment.

CREATE TABLE faulty_manifests (
    manifest     TEXT COLLATE "C" NOT NULL,
    environment  TEXT COLLATE "C" NOT NULL,
    marked_by    TEXT COLLATE "C" NOT NULL,
    reason       TEXT COLLATE "C" NOT NULL,
    marked_at    BIGINT NOT NULL,
    PRIMARY KEY (manifest, environment)
);

CREATE TABLE audit (
    id           BIGSERIAL PRIMARY KEY,
    at           BIGINT NOT NULL,
    actor        TEXT COLLATE "C" NOT NULL,
    surface      TEXT COLLATE "C" NOT NULL,
    action       TEXT COLLATE "C" NOT NULL,
    environment  TEXT COLLATE "C" NOT NULL,
    detail       TEXT COLLATE "C" NOT NULL,
    reason       TEXT COLLATE "C" NOT NULL,
    cycle_id     BIGINT
);
CREATE INDEX audit_by_environment ON audit (environment, id);
