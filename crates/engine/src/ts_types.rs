//! The TypeScript declarations of the engine types the desktop UI receives
//! or sends over IPC, generated from the Rust types by ts-rs into
//! `ui/src/generated/engine.ts`. The test below fails when that file is not
//! what the types give; `WADDLEPERF_WRITE_TS=1 cargo test -p
//! waddleperf-engine generated_typescript` rewrites it.

use ts_rs::TS;

const REGENERATE: &str =
    "WADDLEPERF_WRITE_TS=1 cargo test -p waddleperf-engine generated_typescript";

/// The declarations, each type after those it names, as one module.
fn declarations() -> String {
    let mut out = Vec::new();
    macro_rules! decl {
        ($($t:ty),* $(,)?) => {$(
            out.push(<$t>::decl());
        )*};
    }
    use crate::{autoperf, config, control, kinds, model, netctx, runtime, settings, store, sync};
    decl!(
        model::TestType,
        model::ErrorKind,
        model::Hop,
        model::RedirectHop,
        kinds::PortState,
        model::PortResult,
        model::Metrics,
        model::Interim,
        model::Measurement,
        netctx::LinkType,
        config::NetworkSharing,
        netctx::NetworkContext,
        store::KnownNetwork,
        control::Networks,
        autoperf::Health,
        autoperf::Limit,
        autoperf::Breach,
        autoperf::Tier3,
        autoperf::EscalationState,
        autoperf::Transition,
        runtime::TaskFailure,
        runtime::RunReason,
        runtime::RunSummary,
        runtime::LastRun,
        runtime::AgentState,
        runtime::TargetHealth,
        runtime::Connectivity,
        runtime::Status,
        runtime::PassSummary,
        runtime::Event,
        store::StoreStats,
        store::Bucket,
        store::Series,
        serde_json::Value,
        store::StoredEvent,
        sync::secrets::SecretStoreKind,
        sync::state::SignedOut,
        sync::state::Account,
        sync::state::Lost,
        sync::state::Enrolled,
        sync::state::Progress,
        sync::SyncStatus,
        kinds::HttpMode,
        kinds::TcpMode,
        kinds::Family,
        kinds::BandwidthKind,
        kinds::Direction,
        kinds::TraceProtocol,
        config::PortsTarget,
        config::Thresholds,
        config::ThresholdOverrides,
        config::Schedule,
        config::AutoPerf,
        config::Notifications,
        config::ProbeDefaults,
        config::StoreConfig,
        config::HttpTarget,
        config::TcpTarget,
        config::DnsTarget,
        config::UdpTarget,
        config::IcmpTarget,
        config::TraceTarget,
        config::MtuTarget,
        config::BandwidthTarget,
        settings::Settings,
    );
    waddleperf_testkit::generated::typescript_module(
        &format!(
            "// Generated from the engine's Rust types by ts-rs: do not edit.\n// {REGENERATE}\n\n"
        ),
        &out,
    )
}

#[test]
fn generated_typescript_is_current() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/generated/engine.ts");
    waddleperf_testkit::generated::check_or_write(&path, &declarations(), REGENERATE);
}
