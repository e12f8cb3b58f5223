// The settings page against a mocked IPC: validation errors from the engine
// land on the field they name; a save sends the edited document.
import { vi } from "vitest";

const invoke = vi.fn();
vi.mock("@tauri-apps/api/core", () => ({ invoke: (...a: unknown[]) => invoke(...a) }));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn(async () => () => {}) }));

import { SettingsPage, describeKey, fieldKey } from "../src/pages/settings";

const settings = () => ({
  schedule: { interval_minutes: 60, run_on_start: true, concurrency: 4 },
  autoperf: { enabled: true, escalate_after: 2, deescalate_after: 3, tier3_cooldown_minutes: 360, bandwidth_budget_mb: 2000, thresholds: { latency_ms: 100, loss_pct: 5, http_total_ms: 2000, dns_ms: 1000, throughput_mbps: 10, jitter_ms: 50, hops: 20, cert_days_left: 7 } },
  notifications: { enabled: true, min_interval_minutes: 30 },
  probe: { timeout_ms: 10000, max_redirects: 10, max_body_bytes: 10485760 },
  store: { retention_days: 365 },
  http: [{ url: "https://a.example/", mode: "auto" }, { url: "https://b.example/", mode: "http2" }],
  tcp: [{ target: "a.example:22", mode: "ssh" }],
});

function backend(handlers: Record<string, (args: any) => unknown>) {
  invoke.mockImplementation(async (cmd: string, args: any) => {
    const f = handlers[cmd];
    if (!f) throw { kind: "internal", message: `unexpected command ${cmd}` };
    return f(args);
  });
}

const info = { version: "0.1.0", config_file: "/c.toml", db_file: "/d.db", log_dir: "/l", agent_note: null, config_note: null, autostart: false, device_id: "abcdef0123456789", hostname: "host" };
const account = { enabled: true, account: null, secrets_file: null, enrollment: null, progress: {}, pending: 0, dead: 0 };

/** Types `value` into the input with `id`, as a user does. */
function enter(id: string, value: string) {
  const input = document.getElementById(id) as HTMLInputElement;
  input.value = value;
  input.dispatchEvent(new Event("input"));
}

async function mount() {
  document.body.innerHTML = "<main id='main'></main>";
  const page = new SettingsPage();
  await page.mount(document.getElementById("main")!);
  return page;
}

const submit = async () => {
  document.getElementById("settings-form")!.dispatchEvent(new Event("submit", { cancelable: true }));
  await new Promise((r) => setTimeout(r, 0));
};

describe("settings page", () => {
  beforeEach(() => {
    invoke.mockReset();
  });

  it("sends the edited settings and reports success", async () => {
    let sent: any = null;
    backend({ settings_get: settings, app_info: () => info, account: () => account, settings_set: ({ settings }) => (sent = settings) });
    await mount();
    const interval = document.getElementById("interval") as HTMLInputElement;
    interval.value = "15";
    interval.dispatchEvent(new Event("input"));
    const url = document.getElementById("http-1-url") as HTMLInputElement;
    url.value = "https://c.example/";
    url.dispatchEvent(new Event("input"));
    await submit();
    expect(sent.schedule.interval_minutes).toBe(15);
    expect(sent.http[1].url).toBe("https://c.example/");
    expect(sent.tcp).toEqual([{ target: "a.example:22", mode: "ssh" }]);
    expect(document.getElementById("settings-saved")!.textContent).toContain("Saved");
  });

  it("keeps the network privacy choice: the id by default, changed to nothing", async () => {
    let sent: any = null;
    backend({ settings_get: settings, app_info: () => info, account: () => account, settings_set: ({ settings }) => (sent = settings) });
    await mount();
    const select = document.getElementById("network-sharing") as HTMLSelectElement;
    expect(select.value).toBe("id");
    select.value = "none";
    select.dispatchEvent(new Event("change"));
    await submit();
    expect(sent.network_sharing).toBe("none");
  });

  it("puts the engine's error on the field its key names", async () => {
    backend({
      settings_get: settings,
      app_info: () => info,
      account: () => account,
      settings_set: () => {
        throw { kind: "invalid", key: "suite.http[1].url", message: "`ftp://x` is not an http or https URL" };
      },
    });
    await mount();
    await submit();
    const url = document.getElementById("http-1-url")!;
    expect(url.getAttribute("aria-invalid")).toBe("true");
    expect(document.getElementById("http-1-error")!.textContent).toBe("`ftp://x` is not an http or https URL");
    const summary = document.getElementById("settings-error")!;
    expect(summary.hidden).toBe(false);
    expect(summary.textContent).toBe("Not saved: HTTP target 2, URL: `ftp://x` is not an http or https URL");
  });

  it("refuses an empty number before asking the engine", async () => {
    backend({ settings_get: settings, app_info: () => info, account: () => account });
    await mount();
    const interval = document.getElementById("interval") as HTMLInputElement;
    interval.value = "";
    interval.dispatchEvent(new Event("input"));
    await submit();
    expect(invoke).not.toHaveBeenCalledWith("settings_set", expect.anything());
    expect(interval.getAttribute("aria-invalid")).toBe("true");
    expect(document.getElementById("interval-error")!.textContent).toBe("enter a whole number of 0 or more");
  });

  it("adds and removes targets", async () => {
    let sent: any = null;
    backend({ settings_get: settings, app_info: () => info, account: () => account, settings_set: ({ settings }) => (sent = settings) });
    await mount();
    document.getElementById("add-tcp")!.click();
    const t = document.getElementById("tcp-1-target") as HTMLInputElement;
    t.value = "db.example:5432";
    t.dispatchEvent(new Event("input"));
    (document.querySelector("button[aria-label='Remove HTTP target 1']") as HTMLButtonElement).click();
    await submit();
    expect(sent.http.map((h: any) => h.url)).toEqual(["https://b.example/"]);
    expect(sent.tcp.map((x: any) => x.target)).toEqual(["a.example:22", "db.example:5432"]);
  });

  it("edits DNS, ping, UDP, traceroute and MTU targets, keeping their other keys", async () => {
    let sent: any = null;
    backend({
      settings_get: () => ({ ...settings(), icmp: [{ host: "1.1.1.1", count: 20 }] }),
      app_info: () => info,
      account: () => account,
      settings_set: ({ settings }) => (sent = settings),
    });
    await mount();
    document.getElementById("add-dns")!.click();
    const name = document.getElementById("dns-0-name") as HTMLInputElement;
    name.value = "example.com";
    name.dispatchEvent(new Event("input"));
    const type = document.getElementById("dns-0-type") as HTMLSelectElement;
    type.value = "MX";
    type.dispatchEvent(new Event("change"));
    const server = document.getElementById("dns-0-server") as HTMLInputElement;
    server.value = "192.0.2.53";
    server.dispatchEvent(new Event("input"));
    document.getElementById("add-mtu")!.click();
    enter("mtu-0-host", "example.net");
    document.getElementById("add-traceroute")!.click();
    enter("traceroute-0-host", "gw.example");
    const proto = document.getElementById("traceroute-0-protocol") as HTMLSelectElement;
    const tport = document.getElementById("traceroute-0-port") as HTMLInputElement;
    expect(tport.disabled).toBe(true);
    proto.value = "tcp";
    proto.dispatchEvent(new Event("change"));
    expect(tport.disabled).toBe(false);
    expect(tport.placeholder).toBe("443");
    enter("traceroute-0-port", "22");
    document.getElementById("add-ports")!.click();
    enter("ports-0-host", "nas.lan");
    enter("ports-0-ports", "22,445,8000-8003");
    document.getElementById("add-bandwidth")!.click();
    const bw = document.getElementById("bandwidth-0-server") as HTMLInputElement;
    bw.value = "lanbox:5201";
    bw.dispatchEvent(new Event("input"));
    const dir = document.getElementById("bandwidth-0-direction") as HTMLSelectElement;
    dir.value = "download";
    dir.dispatchEvent(new Event("change"));
    const rate = document.getElementById("bandwidth-0-bitrate") as HTMLInputElement;
    rate.value = "50M";
    rate.dispatchEvent(new Event("input"));
    document.getElementById("add-bandwidth")!.click();
    await Promise.resolve();
    const kind = document.getElementById("bandwidth-1-kind") as HTMLSelectElement;
    kind.value = "librespeed";
    kind.dispatchEvent(new Event("change"));
    const bw2 = document.getElementById("bandwidth-1-server") as HTMLInputElement;
    expect(bw2.placeholder).toContain("base URL");
    expect((document.getElementById("bandwidth-1-bitrate") as HTMLInputElement).disabled).toBe(true);
    bw2.value = "http://speed.lan/";
    bw2.dispatchEvent(new Event("input"));
    const http3 = document.getElementById("http-0-mode") as HTMLSelectElement;
    http3.value = "http3";
    http3.dispatchEvent(new Event("change"));
    await submit();
    expect(sent.dns).toEqual([{ name: "example.com", type: "MX", server: "192.0.2.53" }]);
    expect(sent.icmp).toEqual([{ host: "1.1.1.1", count: 20 }]);
    expect(sent.mtu).toEqual([{ host: "example.net" }]);
    expect(sent.traceroute).toEqual([{ host: "gw.example", protocol: "tcp", port: 22 }]);
    expect(sent.ports).toEqual([{ host: "nas.lan", ports: "22,445,8000-8003" }]);
    expect(describeKey("suite.ports[0].ports")).toBe("port check 1, ports");
    expect(sent.bandwidth).toEqual([
      { server: "lanbox:5201", direction: "download", udp: true, bitrate: "50M" },
      { server: "http://speed.lan/", kind: "librespeed" },
    ]);
    expect(describeKey("suite.bandwidth[1].kind")).toBe("bandwidth server 2, kind");
    expect(describeKey("suite.bandwidth[0].bitrate")).toBe("bandwidth server 1, UDP bitrate");
    expect(sent.http[0].mode).toBe("http3");
    expect(describeKey("suite.icmp[0].count")).toBe("ping host 1, count");
  });

  it("says where the session is kept when there is no keychain", async () => {
    backend({
      settings_get: settings,
      app_info: () => info,
      account: () => ({ ...account, account: { server: "https://s.example", username: "ann", user_id: 1, secret_store: "file", secret_note: "no Secret Service on the session bus", signed_in_at: new Date().toISOString() }, secrets_file: "/home/ann/.local/share/waddleperf/secrets.json" }),
    });
    await mount();
    const note = document.getElementById("secret-store")!.textContent!;
    expect(note).toContain("/home/ann/.local/share/waddleperf/secrets.json");
    expect(note).toContain("0600");
  });

  it("names keys in words", () => {
    expect(fieldKey("suite.tcp", 0, "target")).toBe("suite.tcp[0].target");
    expect(describeKey("suite.tcp[0].target")).toBe("TCP target 1, host and port");
    expect(describeKey("autoperf.thresholds.loss_pct")).toBe("Threshold loss above");
    expect(describeKey("schedule.interval_minutes")).toBe("Run interval");
  });
});
