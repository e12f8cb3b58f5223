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

-- One row per (target, test type): the series charts draw.
CREATE TABLE series (
    id        INTEGER PRIMARY KEY,
    target    TEXT NOT NULL,
    test_type TEXT NOT NULL,
    UNIQUE (target, test_type)
);

-- Roll-ups of the chartable figures, maintained in the same transaction as
-- every insert so that charts over long ranges never scan raw results: one
-- row per series per hour (`hour` = Unix seconds / 3600) and per day (`day` =
-- Unix seconds / 86400), with n, sum, min and max of each figure. `loss_pct`
-- holds each result's effective loss: its own `loss_pct` where it has one,
-- else 0 for a success and 100 for a failure.
-- Hourly.
CREATE TABLE rollup_hourly (
    series_id INTEGER NOT NULL REFERENCES series (id),
    hour      INTEGER NOT NULL,
    count     INTEGER NOT NULL,        -- results
    failed    INTEGER NOT NULL,        -- of which failed
    latency_ms_n   INTEGER NOT NULL DEFAULT 0,
    latency_ms_sum REAL NOT NULL DEFAULT 0,
    latency_ms_min REAL,
    latency_ms_max REAL,
    loss_pct_n   INTEGER NOT NULL DEFAULT 0,
    loss_pct_sum REAL NOT NULL DEFAULT 0,
    loss_pct_min REAL,
    loss_pct_max REAL,
    dns_ms_n   INTEGER NOT NULL DEFAULT 0,
    dns_ms_sum REAL NOT NULL DEFAULT 0,
    dns_ms_min REAL,
    dns_ms_max REAL,
    connect_ms_n   INTEGER NOT NULL DEFAULT 0,
    connect_ms_sum REAL NOT NULL DEFAULT 0,
    connect_ms_min REAL,
    connect_ms_max REAL,
    tls_ms_n   INTEGER NOT NULL DEFAULT 0,
    tls_ms_sum REAL NOT NULL DEFAULT 0,
    tls_ms_min REAL,
    tls_ms_max REAL,
    ttfb_ms_n   INTEGER NOT NULL DEFAULT 0,
    ttfb_ms_sum REAL NOT NULL DEFAULT 0,
    ttfb_ms_min REAL,
    ttfb_ms_max REAL,
    total_ms_n   INTEGER NOT NULL DEFAULT 0,
    total_ms_sum REAL NOT NULL DEFAULT 0,
    total_ms_min REAL,
    total_ms_max REAL,
    throughput_mbps_n   INTEGER NOT NULL DEFAULT 0,
    throughput_mbps_sum REAL NOT NULL DEFAULT 0,
    throughput_mbps_min REAL,
    throughput_mbps_max REAL,
    jitter_ms_n   INTEGER NOT NULL DEFAULT 0,
    jitter_ms_sum REAL NOT NULL DEFAULT 0,
    jitter_ms_min REAL,
    jitter_ms_max REAL,
    download_mbps_n   INTEGER NOT NULL DEFAULT 0,
    download_mbps_sum REAL NOT NULL DEFAULT 0,
    download_mbps_min REAL,
    download_mbps_max REAL,
    upload_mbps_n   INTEGER NOT NULL DEFAULT 0,
    upload_mbps_sum REAL NOT NULL DEFAULT 0,
    upload_mbps_min REAL,
    upload_mbps_max REAL,
    PRIMARY KEY (series_id, hour)
) WITHOUT ROWID;
CREATE INDEX rollup_hourly_by_hour ON rollup_hourly (hour);

-- Daily.
CREATE TABLE rollup_daily (
    series_id INTEGER NOT NULL REFERENCES series (id),
    day      INTEGER NOT NULL,
    count     INTEGER NOT NULL,        -- results
    failed    INTEGER NOT NULL,        -- of which failed
    latency_ms_n   INTEGER NOT NULL DEFAULT 0,
    latency_ms_sum REAL NOT NULL DEFAULT 0,
    latency_ms_min REAL,
    latency_ms_max REAL,
    loss_pct_n   INTEGER NOT NULL DEFAULT 0,
    loss_pct_sum REAL NOT NULL DEFAULT 0,
    loss_pct_min REAL,
    loss_pct_max REAL,
    dns_ms_n   INTEGER NOT NULL DEFAULT 0,
    dns_ms_sum REAL NOT NULL DEFAULT 0,
    dns_ms_min REAL,
    dns_ms_max REAL,
    connect_ms_n   INTEGER NOT NULL DEFAULT 0,
    connect_ms_sum REAL NOT NULL DEFAULT 0,
    connect_ms_min REAL,
    connect_ms_max REAL,
    tls_ms_n   INTEGER NOT NULL DEFAULT 0,
    tls_ms_sum REAL NOT NULL DEFAULT 0,
    tls_ms_min REAL,
    tls_ms_max REAL,
    ttfb_ms_n   INTEGER NOT NULL DEFAULT 0,
    ttfb_ms_sum REAL NOT NULL DEFAULT 0,
    ttfb_ms_min REAL,
    ttfb_ms_max REAL,
    total_ms_n   INTEGER NOT NULL DEFAULT 0,
    total_ms_sum REAL NOT NULL DEFAULT 0,
    total_ms_min REAL,
    total_ms_max REAL,
    throughput_mbps_n   INTEGER NOT NULL DEFAULT 0,
    throughput_mbps_sum REAL NOT NULL DEFAULT 0,
    throughput_mbps_min REAL,
    throughput_mbps_max REAL,
    jitter_ms_n   INTEGER NOT NULL DEFAULT 0,
    jitter_ms_sum REAL NOT NULL DEFAULT 0,
    jitter_ms_min REAL,
    jitter_ms_max REAL,
    download_mbps_n   INTEGER NOT NULL DEFAULT 0,
    download_mbps_sum REAL NOT NULL DEFAULT 0,
    download_mbps_min REAL,
    download_mbps_max REAL,
    upload_mbps_n   INTEGER NOT NULL DEFAULT 0,
    upload_mbps_sum REAL NOT NULL DEFAULT 0,
    upload_mbps_min REAL,
    upload_mbps_max REAL,
    PRIMARY KEY (series_id, day)
) WITHOUT ROWID;
CREATE INDEX rollup_daily_by_day ON rollup_daily (day);
