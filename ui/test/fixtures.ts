// What several UI tests build on: a runtime status as the engine sends it.
import type { Status } from "../src/api";

export const status = (over: Partial<Status> = {}): Status => ({
  running: false,
  paused: false,
  targets: 2,
  targets_health: [],
  autoperf: {},
  connectivity: { lost: false },
  store: { results: 0, outbox_pending: 0, outbox_dead: 0, newest: null },
  ...over,
});
