// Settings: targets per test type, schedule, thresholds, notifications and
// retention, validated by the engine's rules (an error names the field);
// saved to the configuration file and applied without a restart. Also start
// at login, the server account (sign-in, enrollment, sync) and the app's paths.
import { api, errorText, isIpcError, type AppInfo, type HttpMode, type NetworkSharing, type Settings, type SyncStatus, type TcpMode, type Thresholds } from "../api";
import { clear, h } from "../dom";
import { fmtAgo } from "../format";

const THRESHOLDS: { key: keyof Thresholds; label: string; unit: string }[] = [
  { key: "latency_ms", label: "Latency above", unit: "ms" },
  { key: "loss_pct", label: "Loss above", unit: "%" },
  { key: "http_total_ms", label: "HTTP total time above", unit: "ms" },
  { key: "dns_ms", label: "DNS time above", unit: "ms" },
  { key: "jitter_ms", label: "Jitter above", unit: "ms" },
  { key: "throughput_mbps", label: "Throughput below", unit: "Mbit/s" },
  { key: "hops", label: "Hop count above", unit: "hops" },
  { key: "cert_days_left", label: "Certificate expiry within", unit: "days" },
];

/** The settings key of a form field, as the engine names it in errors. */
/** The kinds of bandwidth server, as the engine names them. */
const BANDWIDTH_KINDS: [string, string][] = [
  ["iperf3", "iperf3"],
  ["waddleperf", "WaddlePerf speed test"],
  ["librespeed", "LibreSpeed"],
  ["rpm", "Responsiveness (RPM)"],
];

type SimpleKind = "dns" | "udp" | "icmp" | "traceroute" | "mtu" | "ports" | "bandwidth";
interface SimpleSpec { kind: SimpleKind; field: string; title: string; noun: string; placeholder: string }
const SIMPLE_KINDS: SimpleSpec[] = [
  { kind: "dns", field: "name", title: "DNS", noun: "DNS query", placeholder: "name to look up" },
  { kind: "icmp", field: "host", title: "Ping (ICMP)", noun: "ping host", placeholder: "host or address" },
  { kind: "udp", field: "target", title: "UDP echo", noun: "UDP echo peer", placeholder: "host:port" },
  { kind: "traceroute", field: "host", title: "Traceroute / MTR", noun: "traceroute host", placeholder: "host or address" },
  { kind: "mtu", field: "host", title: "Path MTU", noun: "path MTU host", placeholder: "host or address" },
  { kind: "ports", field: "host", title: "Port checks", noun: "port check host", placeholder: "host or address" },
  { kind: "bandwidth", field: "server", title: "Bandwidth (speed test, AutoPerf tiers 2 and 3)", noun: "bandwidth server", placeholder: "iperf3 server: host or host:port" },
];

export function fieldKey(section: string, index?: number, field?: string): string {
  return index === undefined ? section : `${section}[${index}].${field}`;
}

export class SettingsPage {
  private s!: Settings;
  private form!: HTMLFormElement;
  private summary!: HTMLElement;
  private httpList!: HTMLElement;
  private tcpList!: HTMLElement;
  private simpleLists = new Map<SimpleKind, HTMLElement>();
  private account!: HTMLElement;
  private info: AppInfo | null = null;

  async mount(root: HTMLElement): Promise<void> {
    [this.s, this.info] = await Promise.all([api.settingsGet(), api.appInfo()]);
    this.summary = h("div", { id: "settings-error", role: "alert", class: "error", hidden: true });
    this.httpList = h("div", { id: "http-targets", class: "rows" });
    this.tcpList = h("div", { id: "tcp-targets", class: "rows" });
    for (const k of SIMPLE_KINDS) this.simpleLists.set(k.kind, h("div", { id: `${k.kind}-targets`, class: "rows" }));
    this.account = h("section", { id: "account", class: "card" });
    const saved = h("span", { id: "settings-saved", class: "muted", role: "status" });
    const save = h("button", { id: "save-settings", class: "primary", type: "submit" }, "Save settings");
    this.form = h(
      "form",
      { id: "settings-form", novalidate: true },
      this.summary,
      h(
        "section",
        { class: "card" },
        h("h2", {}, "Targets"),
        h("h3", {}, "HTTP"),
        this.httpList,
        h("button", { type: "button", id: "add-http", onclick: () => this.addHttp() }, "Add HTTP target"),
        h("h3", {}, "TCP, TLS and SSH"),
        this.tcpList,
        h("button", { type: "button", id: "add-tcp", onclick: () => this.addTcp() }, "Add TCP target"),
        ...SIMPLE_KINDS.flatMap((k) => [
          h("h3", {}, k.title),
          this.simpleLists.get(k.kind) as HTMLElement,
          h("button", { type: "button", id: `add-${k.kind}`, onclick: () => this.addSimple(k) }, `Add ${k.noun}`),
        ]),
      ),
      h(
        "section",
        { class: "card" },
        h("h2", {}, "Schedule"),
        this.number("interval", "Run the tests every", "minutes", "schedule.interval_minutes", this.s.schedule.interval_minutes, (v) => (this.s.schedule.interval_minutes = v)),
        this.check("run-on-start", "Run when the app starts", this.s.schedule.run_on_start, (v) => (this.s.schedule.run_on_start = v)),
        this.number("timeout", "Time limit of a test", "ms", "probe.timeout_ms", this.s.probe.timeout_ms, (v) => (this.s.probe.timeout_ms = v)),
        this.number("retention", "Keep results for", "days", "store.retention_days", this.s.store.retention_days, (v) => (this.s.store.retention_days = v)),
      ),
      this.privacy(),
      h(
        "section",
        { class: "card" },
        h("h2", {}, "AutoPerf thresholds"),
        h("p", { class: "muted small" }, "A target is degraded when a figure crosses its threshold; after enough breaches in a row, tier 2 and tier 3 tests run."),
        this.check("autoperf-enabled", "Escalate to tier 2 and 3 tests", this.s.autoperf.enabled, (v) => (this.s.autoperf.enabled = v)),
        this.number("escalate-after", "Escalate after", "breaches in a row", "autoperf.escalate_after", this.s.autoperf.escalate_after, (v) => (this.s.autoperf.escalate_after = v)),
        this.number("deescalate-after", "Step back after", "healthy runs in a row", "autoperf.deescalate_after", this.s.autoperf.deescalate_after, (v) => (this.s.autoperf.deescalate_after = v)),
        this.number("bandwidth-budget", "Data for AutoPerf's bandwidth tests", "MB a day (0: none)", "autoperf.bandwidth_budget_mb", this.s.autoperf.bandwidth_budget_mb, (v) => (this.s.autoperf.bandwidth_budget_mb = v)),
        ...THRESHOLDS.map((t) =>
          this.number(`threshold-${t.key}`, t.label, t.unit, `autoperf.thresholds.${t.key}`, this.s.autoperf.thresholds[t.key], (v) => (this.s.autoperf.thresholds[t.key] = v), "any"),
        ),
      ),
      h(
        "section",
        { class: "card" },
        h("h2", {}, "Notifications"),
        this.check("notify", "Notify when a target's health changes", this.s.notifications.enabled, (v) => (this.s.notifications.enabled = v)),
        this.number("notify-interval", "At most one notification per target every", "minutes", "notifications.min_interval_minutes", this.s.notifications.min_interval_minutes, (v) => (this.s.notifications.min_interval_minutes = v)),
      ),
      h("div", { class: "form-actions" }, save, saved),
    );
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.save(saved);
    });
    this.renderTargets();
    const autostart = h("input", { type: "checkbox", id: "autostart", checked: !!this.info?.autostart });
    autostart.addEventListener("change", async () => {
      try {
        autostart.checked = await api.setAutostart(autostart.checked);
      } catch (e) {
        autostart.checked = !autostart.checked;
        saved.textContent = `Start at login could not be changed: ${errorText(e)}`;
      }
    });
    root.append(
      h("div", { class: "page-head" }, h("h1", {}, "Settings")),
      this.form,
      h("section", { class: "card" }, h("h2", {}, "This computer"), h("label", { class: "check" }, autostart, "Start WaddlePerf at login")),
      this.account,
      this.about(),
    );
    await this.renderAccount();
  }

  /** What uploads say about the network a result was measured on. */
  private privacy(): HTMLElement {
    const choices: [NetworkSharing, string][] = [
      ["none", "Nothing"],
      ["id", "The network id only (a hash: results grouped by network, the network not named)"],
      ["everything", "Everything: interface, addresses, gateway, DNS servers, Wi-Fi name and access point, the label"],
    ];
    const select = h("select", { id: "network-sharing", "data-key": "sync.network_context" });
    for (const [v, label] of choices) select.append(h("option", { value: v }, label));
    select.value = this.s.network_sharing ?? "id";
    select.addEventListener("change", () => (this.s.network_sharing = select.value as NetworkSharing));
    return h(
      "section",
      { class: "card" },
      h("h2", {}, "Privacy"),
      h("label", { for: "network-sharing" }, "With each uploaded result, send about its network "),
      select,
      h("p", { class: "muted small" }, "Results are kept on this computer either way; this is what the WaddlePerf server receives."),
    );
  }

  private number(id: string, label: string, unit: string, key: string, value: number, set: (v: number) => void, step = "1"): HTMLElement {
    const input = h("input", { type: "number", id, inputmode: "decimal", step, value, "data-key": key, "aria-describedby": `${id}-error` });
    input.addEventListener("input", () => set(input.value === "" ? Number.NaN : Number(input.value)));
    return h("div", { class: "field" }, h("label", { for: id }, label), h("div", { class: "with-unit" }, input, h("span", { class: "unit" }, unit)), h("span", { class: "field-error", id: `${id}-error` }));
  }

  private check(id: string, label: string, value: boolean, set: (v: boolean) => void): HTMLElement {
    const input = h("input", { type: "checkbox", id, checked: value });
    input.addEventListener("change", () => set(input.checked));
    return h("label", { class: "check" }, input, label);
  }

  private renderTargets(): void {
    for (const k of SIMPLE_KINDS) this.renderSimple(k);
    clear(this.httpList);
    this.s.http.forEach((t, i) => {
      const id = `http-${i}`;
      const url = h("input", { type: "url", id: `${id}-url`, value: t.url, placeholder: "https://example.com/", "data-key": fieldKey("suite.http", i, "url"), "aria-label": `HTTP target ${i + 1} URL`, "aria-describedby": `${id}-error` });
      url.addEventListener("input", () => (t.url = url.value));
      const mode = h("select", { id: `${id}-mode`, "aria-label": `HTTP target ${i + 1} protocol`, "data-key": fieldKey("suite.http", i, "mode") });
      for (const [v, l] of [["auto", "Auto (ALPN, Alt-Svc)"], ["http1", "HTTP/1.1"], ["http2", "HTTP/2"], ["http3", "HTTP/3 (QUIC)"]]) mode.append(h("option", { value: v }, l));
      mode.value = t.mode;
      mode.addEventListener("change", () => (t.mode = mode.value as HttpMode));
      const remove = h("button", { type: "button", class: "link", "aria-label": `Remove HTTP target ${i + 1}` }, "Remove");
      remove.addEventListener("click", () => {
        this.s.http.splice(i, 1);
        this.renderTargets();
      });
      this.httpList.append(h("div", { class: "row" }, url, mode, remove, h("span", { class: "field-error", id: `${id}-error` })));
    });
    clear(this.tcpList);
    this.s.tcp.forEach((t, i) => {
      const id = `tcp-${i}`;
      const target = h("input", { type: "text", id: `${id}-target`, value: t.target, placeholder: "host:port", "data-key": fieldKey("suite.tcp", i, "target"), "aria-label": `TCP target ${i + 1} host and port`, "aria-describedby": `${id}-error` });
      target.addEventListener("input", () => (t.target = target.value));
      const mode = h("select", { id: `${id}-mode`, "aria-label": `TCP target ${i + 1} check`, "data-key": fieldKey("suite.tcp", i, "mode") });
      for (const [v, l] of [["raw", "Connect"], ["tls", "TLS handshake"], ["ssh", "SSH banner"]]) mode.append(h("option", { value: v }, l));
      mode.value = t.mode;
      mode.addEventListener("change", () => (t.mode = mode.value as TcpMode));
      const remove = h("button", { type: "button", class: "link", "aria-label": `Remove TCP target ${i + 1}` }, "Remove");
      remove.addEventListener("click", () => {
        this.s.tcp.splice(i, 1);
        this.renderTargets();
      });
      this.tcpList.append(h("div", { class: "row" }, target, mode, remove, h("span", { class: "field-error", id: `${id}-error` })));
    });
  }

  private simple(kind: SimpleKind): Array<Record<string, unknown>> {
    const list = (this.s[kind] ??= []) as Array<Record<string, unknown>>;
    return list;
  }

  /** DNS, UDP, ICMP, traceroute, MTU and bandwidth targets: the main field
   * (for DNS also the record type and server; for bandwidth the direction and
   * a UDP bitrate); other keys of an entry are kept as they are. */
  private renderSimple(k: SimpleSpec): void {
    const el = this.simpleLists.get(k.kind) as HTMLElement;
    clear(el);
    const list = this.simple(k.kind);
    list.forEach((t, i) => {
      const id = `${k.kind}-${i}`;
      const main = h("input", { type: "text", id: `${id}-${k.field}`, value: String(t[k.field] ?? ""), placeholder: k.placeholder, "data-key": fieldKey(`suite.${k.kind}`, i, k.field), "aria-label": `${k.noun} ${i + 1}`, "aria-describedby": `${id}-error` });
      main.addEventListener("input", () => (t[k.field] = main.value));
      const extra: HTMLElement[] = [];
      if (k.kind === "dns") {
        const type = h("select", { id: `${id}-type`, "aria-label": `DNS query ${i + 1} record type`, "data-key": fieldKey("suite.dns", i, "type") });
        for (const v of ["A", "AAAA", "CNAME", "MX", "NS", "TXT", "SOA", "PTR", "SRV"]) type.append(h("option", { value: v }, v));
        type.value = String(t.type ?? "A").toUpperCase();
        type.addEventListener("change", () => (t.type = type.value));
        const server = h("input", { type: "text", id: `${id}-server`, value: String(t.server ?? ""), placeholder: "system resolver", "data-key": fieldKey("suite.dns", i, "server"), "aria-label": `DNS query ${i + 1} server` });
        server.addEventListener("input", () => {
          if (server.value.trim() === "") delete t.server;
          else t.server = server.value;
        });
        extra.push(type, server);
      }
      if (k.kind === "bandwidth") extra.push(...this.bandwidthFields(t, i));
      if (k.kind === "traceroute") extra.push(...this.traceFields(t, i));
      if (k.kind === "ports") {
        if (t.ports === undefined) t.ports = "";
        const ports = h("input", { type: "text", id: `${id}-ports`, value: String(t.ports), placeholder: "ports, e.g. 22,443,8000-8003", "data-key": fieldKey("suite.ports", i, "ports"), "aria-label": `Port check ${i + 1} ports` });
        ports.addEventListener("input", () => (t.ports = ports.value));
        extra.push(ports);
      }
      const remove = h("button", { type: "button", class: "link", "aria-label": `Remove ${k.noun} ${i + 1}` }, "Remove");
      remove.addEventListener("click", () => {
        list.splice(i, 1);
        this.renderSimple(k);
      });
      el.append(h("div", { class: "row" }, main, ...extra, remove, h("span", { class: "field-error", id: `${id}-error` })));
    });
  }

  /** How a trace probes (ICMP echo, TCP SYN or UDP) and, for TCP and UDP,
   * the port (empty: 443 for TCP, 33434 for UDP). */
  private traceFields(t: Record<string, unknown>, i: number): HTMLElement[] {
    const id = `traceroute-${i}`;
    const protocol = h("select", { id: `${id}-protocol`, "aria-label": `Traceroute host ${i + 1} protocol`, "data-key": fieldKey("suite.traceroute", i, "protocol") });
    for (const [v, label] of [["icmp", "ICMP echo"], ["tcp", "TCP SYN"], ["udp", "UDP"]]) protocol.append(h("option", { value: v }, label));
    protocol.value = String(t.protocol ?? "icmp");
    const port = h("input", { type: "number", id: `${id}-port`, min: "1", max: "65535", value: t.port === undefined || t.port === null ? "" : String(t.port), "data-key": fieldKey("suite.traceroute", i, "port"), "aria-label": `Traceroute host ${i + 1} port` });
    const fit = () => {
      const icmp = protocol.value === "icmp";
      port.disabled = icmp;
      port.placeholder = icmp ? "" : protocol.value === "tcp" ? "443" : "33434";
      if (icmp) {
        port.value = "";
        delete t.port;
      }
    };
    protocol.addEventListener("change", () => {
      if (protocol.value === "icmp") delete t.protocol;
      else t.protocol = protocol.value;
      fit();
    });
    port.addEventListener("input", () => {
      if (port.value.trim() === "") delete t.port;
      else t.port = Number(port.value);
    });
    fit();
    return [protocol, port];
  }

  /** A bandwidth server's kind, its direction, and UDP with its bitrate
   * (empty: TCP; iperf3 only). */
  private bandwidthFields(t: Record<string, unknown>, i: number): HTMLElement[] {
    const id = `bandwidth-${i}`;
    const kind = h("select", { id: `${id}-kind`, "aria-label": `Bandwidth server ${i + 1} kind`, "data-key": fieldKey("suite.bandwidth", i, "kind") });
    for (const [v, label] of BANDWIDTH_KINDS) kind.append(h("option", { value: v }, label));
    kind.value = String(t.kind ?? "iperf3");
    const direction = h("select", { id: `${id}-direction`, "aria-label": `Bandwidth server ${i + 1} direction`, "data-key": fieldKey("suite.bandwidth", i, "direction") });
    for (const [v, label] of [["upload", "upload"], ["download", "download"], ["bidir", "both ways"]]) direction.append(h("option", { value: v }, label));
    direction.value = String(t.direction ?? "upload");
    direction.addEventListener("change", () => (t.direction = direction.value));
    const bitrate = h("input", { type: "text", id: `${id}-bitrate`, value: t.udp ? String(t.bitrate ?? "1M") : "", placeholder: "TCP (or UDP bitrate, e.g. 50M)", "data-key": fieldKey("suite.bandwidth", i, "bitrate"), "aria-label": `Bandwidth server ${i + 1} UDP bitrate` });
    bitrate.addEventListener("input", () => {
      const v = bitrate.value.trim();
      if (v === "") {
        delete t.udp;
        delete t.bitrate;
      } else {
        t.udp = true;
        t.bitrate = v;
      }
    });
    const fit = () => {
      const iperf3 = kind.value === "iperf3";
      const server = document.getElementById(`${id}-server`) as HTMLInputElement | null;
      if (server) server.placeholder = iperf3 ? "iperf3 server: host or host:port" : "base URL, e.g. http://peer.lan:8080/";
      bitrate.disabled = !iperf3;
      if (!iperf3) {
        bitrate.value = "";
        delete t.udp;
        delete t.bitrate;
      }
    };
    kind.addEventListener("change", () => {
      if (kind.value === "iperf3") delete t.kind;
      else t.kind = kind.value;
      fit();
    });
    queueMicrotask(fit);
    return [kind, direction, bitrate];
  }

  private addSimple(k: SimpleSpec): void {
    this.simple(k.kind).push({ [k.field]: "" });
    this.renderSimple(k);
    document.getElementById(`${k.kind}-${this.simple(k.kind).length - 1}-${k.field}`)?.focus();
  }

  private addHttp(): void {
    this.s.http.push({ url: "", mode: "auto", insecure: false });
    this.renderTargets();
    document.getElementById(`http-${this.s.http.length - 1}-url`)?.focus();
  }

  private addTcp(): void {
    this.s.tcp.push({ target: "", mode: "raw", insecure: false });
    this.renderTargets();
    document.getElementById(`tcp-${this.s.tcp.length - 1}-target`)?.focus();
  }

  private clearErrors(): void {
    this.summary.hidden = true;
    this.summary.textContent = "";
    for (const el of this.form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    for (const el of this.form.querySelectorAll(".field-error")) el.textContent = "";
  }

  private async save(saved: HTMLElement): Promise<void> {
    this.clearErrors();
    for (const input of this.form.querySelectorAll<HTMLInputElement>("input[type=number][data-key]")) {
      const whole = input.step !== "any";
      const v = Number(input.value);
      if (input.value.trim() === "" || !Number.isFinite(v) || v < 0 || (whole && !Number.isInteger(v))) {
        this.showError({ kind: "invalid", key: input.dataset.key, message: whole ? "enter a whole number of 0 or more" : "enter a number of 0 or more" });
        return;
      }
    }
    saved.textContent = "Saving…";
    try {
      this.s = await api.settingsSet(this.s);
      saved.textContent = "Saved. The new settings are in effect.";
    } catch (e) {
      saved.textContent = "";
      this.showError(e);
    }
  }

  private showError(e: unknown): void {
    const message = errorText(e);
    this.summary.hidden = false;
    if (isIpcError(e) && e.key) {
      const field = this.form.querySelector<HTMLElement>(`[data-key="${e.key.replace(/["\\]/g, "\\$&")}"]`);
      if (field) {
        field.setAttribute("aria-invalid", "true");
        const slot = document.getElementById(field.getAttribute("aria-describedby") ?? "") ?? field.closest(".row, .field")?.querySelector(".field-error");
        if (slot) slot.textContent = message;
        field.focus();
      }
      this.summary.textContent = `Not saved: ${describeKey(e.key)}: ${message}`;
    } else {
      this.summary.textContent = `Not saved: ${message}`;
    }
  }

  private async renderAccount(): Promise<void> {
    clear(this.account);
    this.account.append(h("h2", {}, "Server account"));
    let st: SyncStatus;
    try {
      st = await api.account();
    } catch (e) {
      this.account.append(h("p", { class: "error" }, errorText(e)));
      return;
    }
    const msg = h("p", { id: "account-message", role: "status", class: "muted" });
    if (!st.enabled) this.account.append(h("p", { class: "muted" }, "Sync is turned off in the configuration ([sync] enabled = false)."));
    if (st.account) {
      const a = st.account;
      this.account.append(
        h("p", { id: "account-state" }, a.signed_out ? `Signed out of ${a.server}: ${a.signed_out.reason}. Results keep queueing here; sign in again to resume.` : `Signed in to ${a.server} as ${a.username} (${fmtAgo(a.signed_in_at)}).`),
        h(
          "p",
          { id: "secret-store", class: a.secret_store === "file" ? "warning" : "muted" },
          a.secret_store === "keychain"
            ? "The session is kept in the system keychain."
            : `No system keychain answered${a.secret_note ? ` (${a.secret_note})` : ""}: the session is kept in ${st.secrets_file ?? "a file"}, readable only by you (mode 0600).`,
        ),
      );
      const out = h("button", { type: "button", id: "logout" }, "Sign out");
      out.addEventListener("click", async () => {
        try {
          await api.logout();
        } catch (e) {
          msg.textContent = errorText(e);
        }
        await this.renderAccount();
      });
      this.account.append(out);
    }
    if (!st.account || st.account.signed_out) this.account.append(this.loginForm(msg));
    if (st.enrollment && !st.enrollment.lost) {
      const e = st.enrollment;
      this.account.append(h("p", { id: "enrollment" }, `Enrolled with ${e.server} as device ${e.id} (“${e.device_name}”) of organization ${e.organization_id}.`));
    } else {
      const lost = st.enrollment?.lost;
      if (st.enrollment && lost) {
        this.account.append(
          h("p", { id: "enrollment", class: "error" }, `This device (${st.enrollment.id}, “${st.enrollment.device_name}”) no longer exists on ${st.enrollment.server}: ${lost.reason}. Results keep queueing here; enroll again below to resume uploads.`),
        );
      }
      this.account.append(this.enrollForm(msg));
    }
    const sync = h("button", { type: "button", id: "sync-now" }, "Sync now");
    sync.addEventListener("click", async () => {
      msg.textContent = "Uploading…";
      try {
        const r = await api.syncNow();
        msg.textContent = r.error ? `Stopped: ${r.error} (${r.remaining} waiting)` : `Uploaded ${r.delivered}; ${r.remaining} waiting, ${r.dead_total} refused.`;
      } catch (e) {
        msg.textContent = errorText(e);
      }
    });
    const parts = [`${st.pending} results waiting to upload`, `${st.dead} refused by the server`];
    if (st.progress.last_success_at) parts.push(`last upload ${fmtAgo(st.progress.last_success_at)}`);
    this.account.append(h("p", { id: "sync-state", class: "muted" }, parts.join(" · ")), h("div", { class: "actions" }, sync, st.dead > 0 ? this.retryButton(msg) : null), msg);
  }

  private retryButton(msg: HTMLElement): HTMLElement {
    const b = h("button", { type: "button", id: "retry-dead" }, "Retry refused results");
    b.addEventListener("click", async () => {
      try {
        msg.textContent = `${await api.retryDead()} results queued again.`;
      } catch (e) {
        msg.textContent = errorText(e);
      }
    });
    return b;
  }

  private loginForm(msg: HTMLElement): HTMLElement {
    const server = h("input", { type: "url", id: "login-server", placeholder: "https://waddleperf.example.com", autocomplete: "url" });
    const user = h("input", { type: "text", id: "login-user", autocomplete: "username" });
    const pass = h("input", { type: "password", id: "login-password", autocomplete: "current-password" });
    const code = h("input", { type: "text", id: "login-code", inputmode: "numeric", autocomplete: "one-time-code" });
    const codeField = h("div", { class: "field", hidden: true }, h("label", { for: "login-code" }, "One-time code"), code);
    const form = h(
      "form",
      { id: "login-form", class: "inline-form" },
      h("h3", {}, "Sign in"),
      h("div", { class: "field" }, h("label", { for: "login-server" }, "Server"), server),
      h("div", { class: "field" }, h("label", { for: "login-user" }, "User name"), user),
      h("div", { class: "field" }, h("label", { for: "login-password" }, "Password"), pass),
      codeField,
      h("button", { type: "submit" }, "Sign in"),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      msg.textContent = "Signing in…";
      try {
        await api.login({ server: server.value || null, username: user.value, password: pass.value, mfa_code: code.value || null });
        pass.value = "";
        await this.renderAccount();
      } catch (err) {
        if (isIpcError(err) && err.kind === "mfa_required") {
          codeField.hidden = false;
          code.focus();
        }
        msg.textContent = errorText(err);
      }
    });
    return form;
  }

  private enrollForm(msg: HTMLElement): HTMLElement {
    const org = h("input", { type: "number", id: "enroll-org", min: 1, step: 1 });
    const secret = h("input", { type: "password", id: "enroll-secret", autocomplete: "off" });
    const name = h("input", { type: "text", id: "enroll-name", placeholder: this.info?.hostname ?? "" });
    const form = h(
      "form",
      { id: "enroll-form", class: "inline-form" },
      h("h3", {}, "Enroll this device"),
      h("div", { class: "field" }, h("label", { for: "enroll-org" }, "Organization id"), org),
      h("div", { class: "field" }, h("label", { for: "enroll-secret" }, "Enrollment secret"), secret),
      h("div", { class: "field" }, h("label", { for: "enroll-name" }, "Device name"), name),
      h("button", { type: "submit" }, "Enroll"),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const orgId = Number(org.value);
      if (!Number.isInteger(orgId) || orgId < 1) {
        msg.textContent = "Enter the organization's id (a whole number).";
        org.focus();
        return;
      }
      try {
        await api.enroll({ server: null, org_id: orgId, secret: secret.value, name: name.value || null });
        await this.renderAccount();
      } catch (err) {
        msg.textContent = errorText(err);
      }
    });
    return form;
  }

  private about(): HTMLElement {
    const i = this.info;
    if (!i) return h("section", {});
    return h(
      "section",
      { class: "card" },
      h("h2", {}, "About"),
      h(
        "dl",
        { class: "about" },
        h("dt", {}, "Version"),
        h("dd", {}, i.version),
        h("dt", {}, "Configuration"),
        h("dd", { id: "config-path" }, i.config_file),
        h("dt", {}, "History database"),
        h("dd", {}, i.db_file),
        h("dt", {}, "Logs"),
        h("dd", {}, i.log_dir),
        h("dt", {}, "Device"),
        h("dd", {}, `${i.hostname} · ${i.device_id.slice(0, 12)}…`),
      ),
    );
  }
}

/** A settings key in words: `suite.http[1].url` → "HTTP target 2, URL". */
export function describeKey(key: string): string {
  const m = /^suite\.(http|tcp|dns|udp|icmp|traceroute|mtu|ports|bandwidth)\[(\d+)\]\.(\w+)/.exec(key);
  if (m) {
    const field: Record<string, string> = { url: "URL", target: "host and port", mode: "mode", timeout_ms: "time limit", name: "name", host: "host", type: "record type", server: "server", direction: "direction", bitrate: "UDP bitrate", kind: "kind", ports: "ports", protocol: "protocol", port: "port", connect_wait_ms: "connect wait" };
    const noun: Record<string, string> = { http: "HTTP target", tcp: "TCP target", dns: "DNS query", udp: "UDP echo peer", icmp: "ping host", traceroute: "traceroute host", mtu: "path MTU host", ports: "port check", bandwidth: "bandwidth server" };
    return `${noun[m[1]]} ${Number(m[2]) + 1}, ${field[m[3]] ?? m[3]}`;
  }
  const names: Record<string, string> = {
    "schedule.interval_minutes": "Run interval",
    "probe.timeout_ms": "Time limit of a test",
    "store.retention_days": "Retention",
    "autoperf.escalate_after": "Escalate after",
    "autoperf.deescalate_after": "Step back after",
    "autoperf.bandwidth_budget_mb": "Data for AutoPerf's bandwidth tests",
    "notifications.min_interval_minutes": "Notification interval",
  };
  if (names[key]) return names[key];
  const t = /^autoperf\.thresholds\.(\w+)$/.exec(key);
  if (t) return `Threshold ${THRESHOLDS.find((x) => x.key === t[1])?.label.toLowerCase() ?? t[1]}`;
  return key;
}
