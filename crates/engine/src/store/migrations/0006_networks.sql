-- Schema version 6: network context (which network a result was measured on).

-- One row per distinct network (netctx::network_id), with its latest context
-- as JSON and the person's label for it ("Home", "Office").
CREATE TABLE networks (
    id         TEXT PRIMARY KEY,
    label      TEXT,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    context    TEXT NOT NULL
) WITHOUT ROWID;

-- Results older than this version have none.
ALTER TABLE results ADD COLUMN network_id TEXT;
CREATE INDEX results_by_network_time ON results (network_id, started_at);
