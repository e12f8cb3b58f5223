// What several UI tests build on: a runtime status as the engine sends it.
import type { Status } from "../src/api";

export const status = (over: Partial<Status> = {}): Status => ({
  running: false,
  paused: false,
  targets: 2,
  targets_health: [],
  autoperf: { level: 1, tier1_breach_runs: 0, tier1_healthy_runs: 0, tier2_breach_runs: 0 },
  connectivity: { lost: false },
  store: { results: 0, outbox_pending: 0, outbox_dead: 0, newest: null },
  ...over,
});
