-- greenroom state, version 6 (issue #5): manifests rolled back as faulty
-- (never deployed again by the schedule), and the audit trail of every
-- action that changes an environment.

CREATE TABLE faulty_manifests (
    manifest     TEXT NOT NULL,
    environment  TEXT NOT NULL,
    marked_by    TEXT NOT NULL,
    reason       TEXT NOT NULL,
    marked_at    BIGINT NOT NULL,
    PRIMARY KEY (manifest, environment)
);

CREATE TABLE audit (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           BIGINT NOT NULL,
    actor        TEXT NOT NULL,
    surface      TEXT NOT NULL,
    action       TEXT NOT NULL,
    environment  TEXT NOT NULL,
    detail       TEXT NOT NULL,
    reason       TEXT NOT NULL,
    cycle_id     BIGINT
);
CREATE INDEX audit_by_environment ON audit (environment, id);
