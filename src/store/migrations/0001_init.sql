-- WaddlePerf store, schema version 1.
-- Times are integer microseconds since the Unix epoch (UTC).

CREATE TABLE results (
    id          TEXT PRIMARY KEY,          -- UUID v7 of the result
    test_type   TEXT NOT NULL,
    target      TEXT NOT NULL,             -- as configured
    resolved_ip TEXT,
    started_at  INTEGER NOT NULL,
    duration_ms REAL NOT NULL,
    success     INTEGER NOT NULL CHECK (success IN (0, 1)),
    error_kind  TEXT,
    error       TEXT,
    tier        INTEGER NOT NULL,
    latency_ms  REAL,
    metrics     TEXT NOT NULL               -- JSON object, canonical figure names
);
CREATE INDEX results_by_time ON results (started_at);
CREATE INDEX results_by_target_time ON results (target, started_at);

-- One row per result still to be uploaded, written in the same transaction as
-- the result. The sync worker drains it; `dead` rows were refused by the server.
CREATE TABLE outbox (
    result_id       TEXT PRIMARY KEY REFERENCES results (id) ON DELETE CASCADE,
    enqueued_at     INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'dead'))
) WITHOUT ROWID;
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

-- Hourly roll-up of chartable figures, maintained with every insert so that
-- charts over long ranges never scan raw results. `hour` is Unix seconds / 3600.
-- The `success` metric holds 1/0 per result: n is the result count, n - sum the failures.
CREATE TABLE rollup_hourly (
    target    TEXT NOT NULL,
    test_type TEXT NOT NULL,
    metric    TEXT NOT NULL,
    hour      INTEGER NOT NULL,
    n         INTEGER NOT NULL,
    sum       REAL NOT NULL,
    min       REAL NOT NULL,
    max       REAL NOT NULL,
    PRIMARY KEY (target, metric, hour, test_type)
) WITHOUT ROWID;
CREATE INDEX rollup_by_metric_hour ON rollup_hourly (metric, hour);
