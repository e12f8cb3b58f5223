-- Responsiveness (RPM) joins the charted figures: its roll-up columns.
-- No result before this version carries an RPM, so nothing to fill in.
ALTER TABLE rollup_hourly ADD COLUMN rpm_n INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollup_hourly ADD COLUMN rpm_sum REAL NOT NULL DEFAULT 0;
ALTER TABLE rollup_hourly ADD COLUMN rpm_min REAL;
ALTER TABLE rollup_hourly ADD COLUMN rpm_max REAL;
ALTER TABLE rollup_daily ADD COLUMN rpm_n INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollup_daily ADD COLUMN rpm_sum REAL NOT NULL DEFAULT 0;
ALTER TABLE rollup_daily ADD COLUMN rpm_min REAL;
ALTER TABLE rollup_daily ADD COLUMN rpm_max REAL;
