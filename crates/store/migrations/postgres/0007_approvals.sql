-- greenroom state, version 7 (issue #5 point 1): approvals of pipeline
-- stages that wait for a person (`approval = true`).

CREATE TABLE approvals (
    cycle_id     BIGINT NOT NULL,
    stage        TEXT COLLATE "C" NOT NULL,
    approved_by  TEXT COLLATE "C" NOT NULL,
    reason       TEXT COLLATE "C" NOT NULL,
    approved_at  BIGINT NOT NULL,
    PRIMARY KEY (cycle_id, stage)
);
