-- greenroom state, version 11 (issue #5 point 3): the staging part of each
-- PR's sticky comment as last written, so that a preview environment made,
-- renewed or destroyed later can rewrite the comment with its link without
-- losing what the last cycle said.

CREATE TABLE pr_stickies (
    repo        TEXT NOT NULL,
    number      BIGINT NOT NULL,
    body        TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (repo, number)
);
