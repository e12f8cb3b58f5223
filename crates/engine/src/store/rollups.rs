//! Roll-ups: hourly and daily sums per series, kept in the same transaction
//! as every insert, and the chart series read from them.

use super::*;

impl Store {
    /// Bucketed aggregates for charts: one [`Series`] per (target, test type).
    /// Whole-hour buckets are answered from the hourly roll-up, finer ones
    /// from the raw results.
    pub fn series(&self, q: &SeriesQuery) -> Result<Vec<Series>> {
        if !CHART_METRICS.contains(&q.metric.as_str()) {
            return Err(StoreError::Query(format!(
                "metric `{}` cannot be charted (one of: {})",
                q.metric,
                CHART_METRICS.join(", ")
            )));
        }
        if q.bucket_secs < 1 {
            return Err(StoreError::Query(
                "bucket width must be at least 1 second".into(),
            ));
        }
        if q.until <= q.since {
            return Err(StoreError::Query("`until` must be after `since`".into()));
        }
        let b = q.bucket_secs;
        let first = q.since.timestamp().div_euclid(b) * b;
        let end = (q.until.timestamp() + b - 1).div_euclid(b) * b;
        // The coarsest roll-up whose unit divides the bucket; raw rows
        // otherwise, and for one network (roll-ups are per target, not per
        // network; the results' network index keeps that read small).
        let grain = [DAILY, HOURLY]
            .into_iter()
            .find(|g| b % g.secs == 0 && q.network.is_none());
        let mut args: Vec<rusqlite::types::Value> = match grain {
            Some(g) => vec![b.into(), (first / g.secs).into(), (end / g.secs).into()],
            None => vec![
                b.into(),
                (first * 1_000_000).into(),
                (end * 1_000_000).into(),
            ],
        };
        let mut filters = String::new();
        if !q.targets.is_empty() {
            let marks: Vec<String> = (0..q.targets.len())
                .map(|i| format!("?{}", args.len() + 1 + i))
                .collect();
            filters.push_str(&format!(" AND s.target IN ({})", marks.join(", ")));
            args.extend(q.targets.iter().map(|t| t.clone().into()));
        }
        if let Some(t) = q.test_type {
            args.push(t.as_str().to_owned().into());
            filters.push_str(&format!(" AND s.test_type = ?{}", args.len()));
        }
        if let Some(n) = &q.network {
            args.push(n.clone().into());
            filters.push_str(&format!(" AND s.network_id = ?{}", args.len()));
        }
        let sql = match grain {
            Some(g) => {
                // `metric` is one of CHART_METRICS (checked above): safe to splice.
                let (n, sum, min, max) = if q.metric == "success" {
                    (
                        "r.count".to_owned(),
                        "(r.count - r.failed)".to_owned(),
                        "NULL".to_owned(),
                        "NULL".to_owned(),
                    )
                } else {
                    let m = &q.metric;
                    (
                        format!("r.{m}_n"),
                        format!("r.{m}_sum"),
                        format!("r.{m}_min"),
                        format!("r.{m}_max"),
                    )
                };
                format!(
                    "SELECT s.target, s.test_type, (r.{unit} * {secs} / ?1) AS bucket,
                        SUM(r.count), SUM(r.failed),
                        SUM({n}), MIN({min}), SUM({sum}) / NULLIF(SUM({n}), 0), MAX({max}),
                        SUM(r.loss_pct_sum) / NULLIF(SUM(r.loss_pct_n), 0)
                     FROM {table} r JOIN series s ON s.id = r.series_id
                     WHERE r.{unit} >= ?2 AND r.{unit} < ?3{filters}
                     GROUP BY r.series_id, bucket
                     ORDER BY s.target, s.test_type, bucket",
                    unit = g.unit,
                    secs = g.secs,
                    table = g.table,
                )
            }
            None => format!(
                "SELECT s.target, s.test_type, (started_at / 1000000 / ?1) AS bucket,
                    COUNT(*), SUM(1 - success),
                    COUNT({value}), MIN({value}), AVG({value}), MAX({value}),
                    AVG({loss})
                 FROM results s
                 WHERE started_at >= ?2 AND started_at < ?3{filters}
                 GROUP BY target, test_type, bucket
                 ORDER BY target, test_type, bucket",
                value = metric_sql(&q.metric),
                loss = metric_sql("loss_pct"),
            ),
        };
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        let mut out: Vec<Series> = Vec::new();
        while let Some(r) = rows.next()? {
            let target: String = r.get(0)?;
            let tt: String = r.get(1)?;
            let test_type: TestType = tt.parse().map_err(|detail| StoreError::Decode {
                id: target.clone(),
                detail,
            })?;
            let bucket: i64 = r.get(2)?;
            let count: Option<i64> = r.get(3)?;
            let failed: Option<f64> = r.get(4)?;
            let n: Option<i64> = r.get(5)?;
            let bucket = Bucket {
                start: from_micros(bucket * b * 1_000_000),
                count: count.unwrap_or(0).max(0) as u64,
                failed: failed.unwrap_or(0.0).round().max(0.0) as u64,
                n: n.unwrap_or(0).max(0) as u64,
                min: r.get(6)?,
                mean: r.get(7)?,
                max: r.get(8)?,
                loss_pct: r.get(9)?,
            };
            match out.last_mut() {
                Some(s) if s.target == target && s.test_type == test_type => s.buckets.push(bucket),
                _ => out.push(Series {
                    target,
                    test_type,
                    metric: q.metric.clone(),
                    buckets: vec![bucket],
                }),
            }
        }
        Ok(out)
    }
}

/// A roll-up table and the width of its unit.
#[derive(Clone, Copy)]
pub(super) struct Grain {
    pub(super) table: &'static str,
    pub(super) unit: &'static str,
    pub(super) secs: i64,
}

pub(super) const HOURLY: Grain = Grain {
    table: "rollup_hourly",
    unit: "hour",
    secs: 3600,
};
pub(super) const DAILY: Grain = Grain {
    table: "rollup_daily",
    unit: "day",
    secs: 86_400,
};

/// The figures kept in the roll-ups (each has `_n`, `_sum`, `_min`, `_max`
/// columns in the migration), in binding order: the chart figures after
/// `success`, which comes from the result counts.
const ROLLED: &[&str] = CHART_METRICS.split_at(1).1;

/// `INSERT … ON CONFLICT DO UPDATE` adding one result to a roll-up row.
/// Parameters: ?1 series, ?2 unit index, ?3 failed (0/1), then for each
/// figure of [`ROLLED`] its n (0/1) and its value (or NULL).
fn upsert_sql(g: Grain) -> String {
    let mut cols = Vec::new();
    let mut vals = Vec::new();
    let mut sets = vec![
        "count = count + 1".to_owned(),
        "failed = failed + excluded.failed".to_owned(),
    ];
    for (i, m) in ROLLED.iter().enumerate() {
        let (n, v) = (4 + 2 * i, 5 + 2 * i);
        cols.push(format!("{m}_n, {m}_sum, {m}_min, {m}_max"));
        vals.push(format!("?{n}, COALESCE(?{v}, 0), ?{v}, ?{v}"));
        sets.push(format!("{m}_n = {m}_n + excluded.{m}_n"));
        sets.push(format!("{m}_sum = {m}_sum + excluded.{m}_sum"));
        // SQLite's MIN/MAX of a NULL is NULL: keep whichever side is known.
        sets.push(format!(
            "{m}_min = MIN(COALESCE({m}_min, excluded.{m}_min), COALESCE(excluded.{m}_min, {m}_min))"
        ));
        sets.push(format!(
            "{m}_max = MAX(COALESCE({m}_max, excluded.{m}_max), COALESCE(excluded.{m}_max, {m}_max))"
        ));
    }
    format!(
        "INSERT INTO {t} (series_id, {u}, count, failed, {cols}) VALUES (?1, ?2, 1, ?3, {vals})
         ON CONFLICT (series_id, {u}) DO UPDATE SET {sets}",
        t = g.table,
        u = g.unit,
        cols = cols.join(", "),
        vals = vals.join(", "),
        sets = sets.join(", "),
    )
}

/// The upsert for a grain, generated once per process.
fn upsert_for(g: Grain) -> &'static str {
    static HOURLY_SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static DAILY_SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let cell = if g.secs == HOURLY.secs {
        &HOURLY_SQL
    } else {
        &DAILY_SQL
    };
    cell.get_or_init(|| upsert_sql(g))
}

/// Adds a result to the roll-up row of its unit.
pub(super) fn roll_up(tx: &Transaction<'_>, g: Grain, series: i64, m: &Measurement) -> Result<()> {
    let mut stmt = tx.prepare_cached(upsert_for(g))?;
    let values = rolled_values(m);
    let mut args: Vec<rusqlite::types::Value> = Vec::with_capacity(3 + 2 * ROLLED.len());
    args.push(series.into());
    args.push(m.started_at.timestamp().div_euclid(g.secs).into());
    args.push(i64::from(!m.success).into());
    for v in values {
        args.push(i64::from(v.is_some()).into());
        args.push(v.map_or(rusqlite::types::Value::Null, rusqlite::types::Value::Real));
    }
    stmt.execute(rusqlite::params_from_iter(args))?;
    Ok(())
}

/// A result's values for [`ROLLED`], in order; non-finite values are left out.
fn rolled_values(m: &Measurement) -> [Option<f64>; CHART_METRICS.len() - 1] {
    let x = &m.metrics;
    // Effective loss: the result's own figure, else all-or-nothing.
    let loss = x.loss_pct.unwrap_or(if m.success { 0.0 } else { 100.0 });
    [
        m.latency_ms,
        Some(loss),
        x.dns_ms,
        x.connect_ms,
        x.tls_ms,
        x.ttfb_ms,
        x.total_ms,
        x.throughput_mbps,
        x.jitter_ms,
        x.download_mbps,
        x.upload_mbps,
        x.rpm,
    ]
    .map(|v| v.filter(|v| v.is_finite()))
}

/// The series id of a result's (target, test type), creating it if new.
pub(super) fn series_id(
    tx: &Transaction<'_>,
    known: &HashMap<(String, TestType), i64>,
    new: &mut HashMap<(String, TestType), i64>,
    m: &Measurement,
) -> Result<i64> {
    let key = (m.target.clone(), m.test_type);
    if let Some(id) = known.get(&key).or_else(|| new.get(&key)) {
        return Ok(*id);
    }
    tx.prepare_cached("INSERT OR IGNORE INTO series (target, test_type) VALUES (?1, ?2)")?
        .execute(params![m.target, m.test_type.as_str()])?;
    let id: i64 = tx
        .prepare_cached("SELECT id FROM series WHERE target = ?1 AND test_type = ?2")?
        .query_row(params![m.target, m.test_type.as_str()], |r| r.get(0))?;
    new.insert(key, id);
    Ok(id)
}

/// SQL for a chart metric over a raw `results` row. `metric` is one of
/// [`CHART_METRICS`] (checked by the caller), so it is safe to splice.
fn metric_sql(metric: &str) -> String {
    match metric {
        "latency_ms" => "latency_ms".to_owned(),
        "success" => "success".to_owned(),
        "loss_pct" => {
            "COALESCE(json_extract(metrics, '$.loss_pct'), (1 - success) * 100.0)".to_owned()
        }
        other => format!("json_extract(metrics, '$.{other}')"),
    }
}

/// Marks that the roll-ups must be rebuilt, once the schema has every
/// roll-up column (the last migration's step does it).
const REBUILD_MARK: &str = "rollups_rebuild_pending";

/// Migration 4's step: when its SQL moved results to other series, the
/// roll-ups are marked for a rebuild (done once the later migrations have
/// added their columns: see [`rebuild_if_marked`]).
pub(super) fn mark_if_moved(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let moved: i64 = tx.query_row("SELECT changes()", [], |r| r.get(0))?;
    if moved > 0 {
        tx.execute(
            "INSERT OR REPLACE INTO state (key, value, updated_at) VALUES (?1, 'true', strftime('%s','now'))",
            [REBUILD_MARK],
        )?;
    }
    Ok(())
}

/// The last migration's step: every roll-up rebuilt from the results when
/// an earlier migration asked for it (a result whose row cannot be read is
/// left out of the roll-ups, as it is of charts).
pub(super) fn rebuild_if_marked(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let marked = tx.execute("DELETE FROM state WHERE key = ?1", [REBUILD_MARK])?;
    if marked == 0 {
        return Ok(());
    }
    tx.execute_batch("DELETE FROM rollup_hourly; DELETE FROM rollup_daily; DELETE FROM series;")?;
    let mut ids = HashMap::new();
    // Run at schema version 5, before results had a network column (roll-ups
    // do not need it).
    let mut stmt = tx.prepare(&format!(
        "SELECT {} FROM results ORDER BY started_at",
        super::RESULT_COLUMNS.replace(", network_id", ", NULL")
    ))?;
    let rows = stmt.query_map([], super::row_to_raw)?;
    for raw in rows {
        let Ok(m) = raw?.decode() else {
            continue;
        };
        let as_sql = |e: StoreError| match e {
            StoreError::Sql(e)
            | StoreError::Full(e)
            | StoreError::Io(e)
            | StoreError::CorruptData(e) => e,
            other => rusqlite::Error::ToSqlConversionFailure(Box::new(other)),
        };
        let sid = series_id(tx, &HashMap::new(), &mut ids, &m).map_err(as_sql)?;
        for grain in [HOURLY, DAILY] {
            roll_up(tx, grain, sid, &m).map_err(as_sql)?;
        }
    }
    Ok(())
}
