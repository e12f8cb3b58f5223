//! One run: tier 1, AutoPerf's health and escalation, then tiers 2 and 3,
//! each tier's probes with bounded concurrency and every result stored as
//! it is measured.

use super::*;
use crate::probe::bandwidth::Progress as LiveProgress;

impl Runtime {
    /// One run: tier 1 (or a forced tier), then AutoPerf — health, tier
    /// changes, and tiers 2 and 3 when escalated.
    pub(super) async fn execute(&self, reason: RunReason, forced: Option<u8>) -> Arc<RunSummary> {
        let (cfg, plans) = self.config_and_plans();
        let run_id = Uuid::now_v7();
        let started_at = Utc::now();
        let first_tier = forced.unwrap_or(1);
        // A speed test asked for by hand runs on any link; anything else
        // saturating waits for an unmetered one ([network] allow_metered).
        let tier1 = &match reason {
            RunReason::SpeedTest => plans.speed().to_vec(),
            _ => self.unless_metered(plans.tier(first_tier), &cfg).await,
        };
        let mut progress = Progress {
            run_id,
            done: 0,
            total: tier1.len(),
            store_error: None,
            interrupted: false,
            portal: false,
        };
        progress.portal = self.behind_portal(&cfg).await;
        tracing::info!(%run_id, ?reason, total = progress.total, "run started");
        self.emit(Event::RunStarted {
            run_id,
            started_at,
            reason,
            total: progress.total,
        });

        let mut results = Vec::new();
        let mut tiers = vec![first_tier];
        let mut transitions = Vec::new();
        let first = self
            .run_tier_suite(first_tier, tier1, &cfg, &mut progress)
            .await;
        // Each tier 1 result's breaches, computed once for health and escalation.
        let tier1_breaches: Vec<Vec<Breach>> = tier1
            .iter()
            .zip(&first)
            .map(|(p, m)| autoperf::tier1_breaches(m, &p.thresholds))
            .collect();
        // Behind a captive portal nothing says how the network is: no
        // health change, no outage, no escalation.
        if forced.is_none() && !progress.interrupted && !progress.portal {
            self.after_tier1(&first, &tier1_breaches).await;
        }
        results.extend(first.iter().cloned());

        if forced.is_none() && cfg.autoperf.enabled && !progress.interrupted && !progress.portal {
            let mut state = self.load_state::<EscalationState>(key::AUTOPERF).await;
            let breaches: Vec<Breach> = tier1_breaches.into_iter().flatten().collect();
            if let Some(tr) = state.after_tier1(&breaches, &cfg.autoperf) {
                self.transition(&tr).await;
                transitions.push(tr);
            }
            if state.level >= 2 {
                let tier2 = &self.within_budget(plans.tier(2), &cfg).await;
                let second = self.more_tier(2, tier2, &cfg, &mut progress).await;
                tiers.push(2);
                results.extend(second.iter().cloned());
                if !progress.interrupted {
                    let b2: Vec<Breach> = tier2
                        .iter()
                        .zip(&second)
                        .flat_map(|(p, m)| autoperf::tier2_breaches(m, &p.thresholds))
                        .collect();
                    match state.after_tier2(&b2, Utc::now(), &cfg.autoperf) {
                        Tier3::Run(tr) => {
                            self.transition(&tr).await;
                            transitions.push(tr);
                            let tier3 = &self.within_budget(plans.tier(3), &cfg).await;
                            let third = self.more_tier(3, tier3, &cfg, &mut progress).await;
                            tiers.push(3);
                            results.extend(third);
                            self.log_diagnostics(&cfg).await;
                        }
                        Tier3::CoolingDown { until } => {
                            tracing::info!(
                                "tier 2 still crosses thresholds; tier 3 ran recently and may run again after {until}"
                            );
                        }
                        Tier3::No => {}
                    }
                }
            }
            if let Err(e) = self
                .with_store(move |s| s.state_set(key::AUTOPERF, &state))
                .await
            {
                tracing::error!("AutoPerf state not saved: {e}");
            }
        }

        if let Err(e) = self.apply_retention().await {
            tracing::warn!("retention not applied: {e}");
        }
        let summary = RunSummary {
            run_id,
            reason,
            started_at,
            finished_at: Utc::now(),
            tiers,
            results,
            transitions,
            interrupted: progress.interrupted,
            store_error: progress.store_error,
        };
        let last = LastRun {
            run_id,
            reason,
            started_at,
            finished_at: summary.finished_at,
            tiers: summary.tiers.clone(),
            total: summary.results.len(),
            failed: summary.failed(),
        };
        if let Err(e) = self
            .with_store(move |s| s.state_set(key::LAST_RUN, &last))
            .await
        {
            tracing::error!("last run not recorded: {e}");
        }
        tracing::info!(
            %run_id,
            failed = summary.failed(),
            interrupted = summary.interrupted,
            "run finished"
        );
        let summary = Arc::new(summary);
        self.emit(Event::RunFinished {
            summary: Arc::clone(&summary),
        });
        summary
    }

    /// A tier's probes without its bandwidth tests when AutoPerf's daily
    /// data budget is used up (`[autoperf] bandwidth_budget_mb`): what tier
    /// 2 and 3 results of bandwidth tests moved since local midnight. The
    /// skip is logged as an event.
    pub(super) async fn within_budget(&self, planned: &[Planned], cfg: &Config) -> Vec<Planned> {
        let is_bandwidth = |p: &Planned| p.probe.test_type() == TestType::Bandwidth;
        let planned = &self.unless_metered(planned, cfg).await;
        if !planned.iter().any(is_bandwidth) {
            return planned.to_vec();
        }
        let budget = u64::from(cfg.autoperf.bandwidth_budget_mb) * 1_000_000;
        let since = chrono::Local::now()
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .and_then(|t| t.and_local_timezone(chrono::Local).earliest())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| Utc::now() - chrono::Duration::hours(24));
        let used = self
            .with_store(move |s| {
                s.history(&crate::store::HistoryQuery {
                    test_type: Some(TestType::Bandwidth),
                    since: Some(since),
                    ..Default::default()
                })
            })
            .await
            .map(|rows| {
                rows.iter()
                    .filter(|m| m.tier >= 2)
                    .filter_map(|m| m.metrics.bytes)
                    .sum::<u64>()
            });
        let used = match used {
            Ok(u) => u,
            Err(e) => {
                // Not knowing what was used, do not risk the user's data.
                tracing::warn!("bandwidth budget unknown, its tests skipped: {e}");
                u64::MAX
            }
        };
        if used < budget {
            return planned.to_vec();
        }
        let message = format!(
            "AutoPerf's bandwidth tests skipped: {} MB moved today of a {} MB budget \
             ([autoperf] bandwidth_budget_mb); they run again after midnight",
            if used == u64::MAX {
                "unknown".to_owned()
            } else {
                (used / 1_000_000).to_string()
            },
            cfg.autoperf.bandwidth_budget_mb
        );
        let details = serde_json::json!({ "used_bytes": used, "budget_mb": cfg.autoperf.bandwidth_budget_mb });
        self.without_bandwidth(planned, "bandwidth_budget", message, details)
            .await
    }

    /// `planned` without its bandwidth tests, the reason logged.
    async fn without_bandwidth(
        &self,
        planned: &[Planned],
        kind: &str,
        message: String,
        details: serde_json::Value,
    ) -> Vec<Planned> {
        tracing::info!("{message}");
        self.log_event(kind, message, details).await;
        planned
            .iter()
            .filter(|p| p.probe.test_type() != TestType::Bandwidth)
            .cloned()
            .collect()
    }

    /// `planned` without its bandwidth tests when the OS marks the link
    /// metered and `[network] allow_metered` is off; the skip is logged.
    pub(super) async fn unless_metered(&self, planned: &[Planned], cfg: &Config) -> Vec<Planned> {
        let is_bandwidth = |p: &Planned| p.probe.test_type() == TestType::Bandwidth;
        if cfg.network.allow_metered || !planned.iter().any(is_bandwidth) {
            return planned.to_vec();
        }
        let net = self.network_now().await;
        if net.as_ref().and_then(|c| c.metered) != Some(true) {
            return planned.to_vec();
        }
        let message = format!(
            "bandwidth tests skipped: the OS marks this connection ({}) metered; \
             [network] allow_metered = true runs them anyway",
            net.as_ref().map(|c| c.describe()).unwrap_or_default()
        );
        let details =
            serde_json::json!({ "network_id": net.as_ref().map(|c| c.network_id.clone()) });
        self.without_bandwidth(planned, "metered", message, details)
            .await
    }

    /// Runs a further tier inside the current run.
    pub(super) async fn more_tier(
        &self,
        tier: u8,
        planned: &[Planned],
        cfg: &Config,
        progress: &mut Progress,
    ) -> Vec<Measurement> {
        progress.total += planned.len();
        tracing::info!(run_id = %progress.run_id, tier, tests = planned.len(), "tier started");
        self.emit(Event::TierStarted {
            run_id: progress.run_id,
            tier,
            total: progress.total,
        });
        self.run_tier_suite(tier, planned, cfg, progress).await
    }

    /// Health per target and connectivity from a tier 1 run's results.
    pub(super) async fn after_tier1(&self, results: &[Measurement], breaches: &[Vec<Breach>]) {
        let now = Utc::now();
        // Both earlier states in one trip to the store.
        let (old, old_conn): (Vec<TargetHealth>, Connectivity) = self
            .with_store(|s| {
                Ok((
                    state_or_default(s, key::HEALTH),
                    state_or_default(s, key::CONNECTIVITY),
                ))
            })
            .await
            .unwrap_or_else(|e| {
                tracing::warn!("health state unreadable, starting afresh: {e}");
                Default::default()
            });
        let old_overall = old.iter().map(|h| h.health).max();
        let mut new = Vec::with_capacity(results.len());
        let mut log = Vec::new();
        let mut events = Vec::new();
        for (m, b) in results.iter().zip(breaches) {
            let health = autoperf::health_from(m, b);
            let reason = b.first().map(ToString::to_string);
            let prev = old
                .iter()
                .find(|h| h.test_type == m.test_type && h.target == m.target);
            let since = match prev {
                Some(h) if h.health == health => h.since,
                _ => now,
            };
            if prev.map(|h| h.health) != Some(health) {
                let from = prev.map(|h| h.health);
                let from_part = from.map(|f| format!("{f} → ")).unwrap_or_default();
                let why = reason
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                let message = format!("{} {}: {from_part}{health}{why}", m.test_type, m.target);
                log.push(NewEvent {
                    at: now,
                    kind: "health_changed".into(),
                    target: Some(m.target.clone()),
                    message,
                    details: serde_json::json!({
                        "test_type": m.test_type,
                        "from": from,
                        "to": health,
                        "reason": reason,
                    }),
                });
                events.push(Event::HealthChanged {
                    test_type: m.test_type,
                    target: m.target.clone(),
                    from,
                    to: health,
                    reason: reason.clone(),
                });
            }
            new.push(TargetHealth {
                test_type: m.test_type,
                target: m.target.clone(),
                health,
                since,
                reason,
            });
        }
        let overall = new.iter().map(|h| h.health).max();

        // Connectivity: lost when no tier 1 test could reach its target.
        let unreachable = |m: &Measurement| {
            !m.success
                && matches!(
                    m.error_kind,
                    Some(ErrorKind::Dns | ErrorKind::Unreachable | ErrorKind::Timeout)
                )
        };
        let lost = !results.is_empty() && results.iter().all(unreachable);
        let mut conn_event = None;
        let conn = if lost != old_conn.lost {
            let message = if lost {
                format!(
                    "connectivity lost: none of the {} tests reached its target",
                    results.len()
                )
            } else {
                "connectivity restored".to_owned()
            };
            let kind = if lost {
                "connectivity_lost"
            } else {
                "connectivity_restored"
            };
            log.push(NewEvent {
                at: now,
                kind: kind.into(),
                target: None,
                message: message.clone(),
                details: serde_json::Value::Null,
            });
            conn_event = Some(if lost {
                Event::ConnectivityLost { message }
            } else {
                Event::ConnectivityRestored { message }
            });
            Connectivity {
                lost,
                since: Some(now),
            }
        } else {
            old_conn
        };
        let saved = self
            .with_store(move |s| {
                s.state_set(key::HEALTH, &new)?;
                s.state_set(key::CONNECTIVITY, &conn)?;
                s.log_events(&log)
            })
            .await;
        if let Err(e) = saved {
            tracing::error!("health not saved: {e}");
        }
        for ev in events {
            if let Event::HealthChanged {
                target, from, to, ..
            } = &ev
            {
                tracing::info!(%target, ?from, %to, "health changed");
            }
            self.emit(ev);
        }
        if let Some(ev) = conn_event {
            if let Event::ConnectivityLost { message } | Event::ConnectivityRestored { message } =
                &ev
            {
                tracing::warn!("connectivity: {message}");
            }
            self.emit(ev);
        }
        if let Some(h) = overall.filter(|h| Some(*h) != old_overall) {
            self.emit(Event::OverallHealth { health: h });
        }
    }

    /// Logs and broadcasts a tier change.
    pub(super) async fn transition(&self, tr: &Transition) {
        let kind = if tr.to > tr.from {
            "escalated"
        } else {
            "deescalated"
        };
        tracing::warn!("AutoPerf: {}", tr.message);
        let ev = NewEvent {
            at: Utc::now(),
            kind: kind.into(),
            target: None,
            message: tr.message.clone(),
            details: serde_json::json!({
                "from": tr.from,
                "to": tr.to,
                "breaches": tr.breaches,
            }),
        };
        if let Err(e) = self.with_store(move |s| s.log_events(&[ev])).await {
            tracing::error!("escalation not logged: {e}");
        }
        self.emit(if tr.to > tr.from {
            Event::Escalated {
                transition: tr.clone(),
            }
        } else {
            Event::Deescalated {
                transition: tr.clone(),
            }
        });
    }

    /// A state document, or its default when absent or unreadable.
    pub(super) async fn load_state<T>(&self, key: &'static str) -> T
    where
        T: serde::de::DeserializeOwned + Default + Send + 'static,
    {
        self.with_store(move |s| Ok(state_or_default(s, key)))
            .await
            .unwrap_or_else(|e| {
                tracing::warn!("state `{key}` unreadable, starting afresh: {e}");
                T::default()
            })
    }

    /// One tier's suite: probes with bounded concurrency (exclusive ones
    /// alone), each result stored as soon as it is measured (a crash mid-run
    /// keeps the finished ones), events for each step. Returns the results in
    /// suite order; on shutdown, the finished ones only.
    pub(super) async fn run_tier_suite(
        &self,
        tier: u8,
        planned: &[Planned],
        cfg: &Config,
        progress: &mut Progress,
    ) -> Vec<Measurement> {
        let permits = cfg.schedule.concurrency.max(1);
        let gate = Arc::new(Semaphore::new(permits as usize));
        let mut tasks = tokio::task::JoinSet::new();
        // Which probe each task runs, so that even a crashed task leaves a result.
        let mut by_task = std::collections::HashMap::new();
        let (events, run_id) = (self.inner.events.clone(), progress.run_id);
        for (i, p) in planned.iter().enumerate() {
            let gate = Arc::clone(&gate);
            let mut probe = p.probe.clone();
            let what = (i, probe.test_type(), probe.target());
            if let AnyProbe::Bandwidth(b) = &mut probe {
                // Live progress: the probe's figures, as events.
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                b.progress = Some(LiveProgress(tx));
                let (events, target) = (events.clone(), what.2.clone());
                tokio::spawn(async move {
                    while let Some(interim) = rx.recv().await {
                        let _ = events.send(Event::BandwidthProgress {
                            run_id,
                            target: target.clone(),
                            interim,
                        });
                    }
                });
            }
            let events = events.clone();
            let handle = tasks.spawn(async move {
                let want = if probe.exclusive() { permits } else { 1 };
                let _permit = gate.acquire_many_owned(want).await;
                let _ = events.send(Event::TestStarted {
                    run_id,
                    tier,
                    test_type: probe.test_type(),
                    target: probe.target(),
                });
                (i, probe.run().await)
            });
            by_task.insert(handle.id(), what);
        }
        let mut results: Vec<Option<Measurement>> = vec![None; planned.len()];
        let mut cancel = self.inner.cancel.subscribe();
        loop {
            let joined = tokio::select! {
                biased;
                _ = cancel.wait_for(|c| *c) => {
                    tasks.abort_all();
                    progress.interrupted = true;
                    break;
                }
                j = tasks.join_next() => match j {
                    Some(j) => j,
                    None => break,
                },
            };
            let (i, mut m) = match joined {
                Ok(x) => x,
                Err(e) => match by_task.get(&e.id()) {
                    Some((i, test_type, target)) => {
                        tracing::error!(%target, "the probe crashed: {e}");
                        let mut m = Measurement::begin(*test_type, target.clone());
                        m.fail(ErrorKind::Io, format!("the probe crashed: {e}"));
                        (*i, m)
                    }
                    None => continue,
                },
            };
            m.tier = tier;
            if progress.portal {
                m.metrics.captive_portal = Some(true);
            }
            if m.network_id.is_none() {
                m.network_id = self.network_now().await.map(|c| c.network_id.clone());
            }
            progress.done += 1;
            let stored = self.store_results(vec![m.clone()]).await;
            if let Err(e) = stored {
                tracing::error!(target = %m.target, "result not stored: {e}");
                progress.store_error.get_or_insert_with(|| e.to_string());
            }
            tracing::info!(
                target = %m.target,
                test_type = %m.test_type,
                tier,
                success = m.success,
                latency_ms = m.latency_ms,
                "{}",
                m.summary()
            );
            self.emit(Event::Result {
                run_id,
                done: progress.done,
                total: progress.total,
                result: Box::new(m.clone()),
            });
            if let Some(slot) = results.get_mut(i) {
                *slot = Some(m);
            }
        }
        results.into_iter().flatten().collect()
    }
}
