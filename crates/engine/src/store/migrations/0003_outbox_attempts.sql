-- WaddlePerf store, schema version 3: what the sync worker needs of the outbox.

-- Set before each upload attempt and cleared when the server answers: a row
-- still marked after a crash or a dropped connection had an attempt whose
-- outcome is unknown, so a "duplicate" refusal must be settled by reading back.
ALTER TABLE outbox ADD COLUMN uncertain INTEGER NOT NULL DEFAULT 0 CHECK (uncertain IN (0, 1));
