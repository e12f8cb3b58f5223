-- WaddlePerf store, schema version 2: runtime state and the event log.

-- Small JSON documents the runtime keeps between runs and processes: whether
-- monitoring is paused, the AutoPerf escalation state, health per target, the
-- last run and the agent's next run.
CREATE TABLE state (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,             -- JSON
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- What happened, for history and `waddleperf events`: escalations (with what
-- breached, the value and the threshold), health changes, connectivity lost
-- and restored, pause and resume.
CREATE TABLE events (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    target  TEXT,
    message TEXT NOT NULL,
    details TEXT NOT NULL DEFAULT '{}'    -- JSON
);
CREATE INDEX events_by_time ON events (at);
