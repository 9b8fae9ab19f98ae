-- greenroom state, version 7 (issue #5 point 1): approvals of pipeline
-- stages that wait for a person (`approval = true`).

CREATE TABLE approvals (
    cycle_id     BIGINT NOT NULL,
    stage        TEXT NOT NULL,
    approved_by  TEXT NOT NULL,
    reason       TEXT NOT NULL,
    approved_at  BIGINT NOT NULL,
    PRIMARY KEY (cycle_id, stage)
);
