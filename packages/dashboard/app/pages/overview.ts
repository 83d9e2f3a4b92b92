import { api } from "../api.ts";
import { type Series, lineChart } from "../chart.ts";
import { h, replace } from "../dom.ts";
import { errorText } from "../table.ts";

/** /admin/metrics: the counters behind /metrics, as prom-client's JSON. */
interface Snapshot {
  metrics: {
    name: string;
    type: string;
    values: { value: number; labels: Record<string, string | number>; metricName?: string }[];
  }[];
}

interface Sample {
  /** Seconds, from the browser's monotonic clock. */
  t: number;
  values: { name: string; labels: Record<string, string | number>; value: number }[];
}

const POLL_MS = 2000;
const KEEP = 90;

type Pick = (name: string, labels: Record<string, string | number>) => string | null;

/** Sums a sample's values per series name (null: not part of any series). */
function sums(s: Sample, pick: Pick): Map<string, number> {
  const m = new Map<string, number>();
  for (const v of s.values) {
    const k = pick(v.name, v.labels);
    if (k !== null) m.set(k, (m.get(k) ?? 0) + v.value);
  }
  return m;
}

/** Per-second (or per `per` seconds) rates between consecutive samples, one series per name. */
function rates(samples: Sample[], pick: Pick, per = 1): Series[] {
  const all = samples.map((s) => sums(s, pick));
  const names = [...new Set(all.flatMap((m) => [...m.keys()]))].sort();
  return names.map((name) => ({
    name,
    values: samples.slice(1).map((s, i) => {
      const dt = s.t - samples[i]!.t;
      const d = (all[i + 1]!.get(name) ?? 0) - (all[i]!.get(name) ?? 0);
      // A restarted server starts its counters at zero again: no rate across that gap.
      return dt > 0 && d >= 0 ? (d / dt) * per : null;
    }),
  }));
}

/** The latest value per series (gauges). */
function levels(samples: Sample[], pick: Pick): Series[] {
  const all = samples.map((s) => sums(s, pick));
  const names = [...new Set(all.flatMap((m) => [...m.keys()]))].sort();
  return names.map((name) => ({ name, values: all.slice(1).map((m) => m.get(name) ?? 0) }));
}

const DURATION = "evergreen_token_request_duration_seconds";

/** Refresh-grant latency between samples: the mean, and the bucket bound under which 95% fell. */
function refreshLatency(samples: Sample[]): Series[] {
  const mean: (number | null)[] = [];
  const p95: (number | null)[] = [];
  for (let i = 1; i < samples.length; i++) {
    const at = (s: Sample, suffix: string) =>
      s.values.filter((v) => v.name === DURATION + suffix && v.labels.grant_type === "refresh_token");
    const total = (s: Sample, suffix: string) => at(s, suffix).reduce((a, v) => a + v.value, 0);
    const count = total(samples[i]!, "_count") - total(samples[i - 1]!, "_count");
    const sum = total(samples[i]!, "_sum") - total(samples[i - 1]!, "_sum");
    if (count <= 0) {
      mean.push(null);
      p95.push(null);
      continue;
    }
    mean.push((sum / count) * 1000);
    const before = new Map(at(samples[i - 1]!, "_bucket").map((v) => [String(v.labels.le), v.value]));
    const buckets = at(samples[i]!, "_bucket")
      .map((v) => ({ le: String(v.labels.le), n: v.value - (before.get(String(v.labels.le)) ?? 0) }))
      .filter((b) => b.le !== "+Inf")
      .sort((a, b) => Number(a.le) - Number(b.le));
    const bound = buckets.find((b) => b.n >= 0.95 * count);
    p95.push(bound ? Number(bound.le) * 1000 : null);
  }
  return [
    { name: "mean", values: mean },
    { name: "95th percentile (bucket bound)", values: p95 },
  ];
}

function totals(
  s: Sample | undefined,
  name: string,
  filter: (l: Record<string, string | number>) => boolean = () => true,
) {
  return (s?.values ?? [])
    .filter((v) => v.name === name && filter(v.labels))
    .reduce((a, v) => a + v.value, 0);
}

/** The overview: live charts from the same counters as /metrics, polled every two seconds. */
export function overviewPage(main: HTMLElement): () => void {
  const samples: Sample[] = [];
  const status = h("p", { class: "error", role: "alert" });
  const tiles = h("div", { class: "tiles" });
  const charts = h("div", { class: "charts" });
  replace(
    main,
    h("h1", null, "Overview"),
    h(
      "p",
      { class: "muted" },
      "Live from the issuer's counters (the same as /metrics), sampled every 2 seconds; rates are computed here.",
    ),
    status,
    tiles,
    charts,
  );

  function render() {
    const last = samples.at(-1);
    const tile = (label: string, value: number) =>
      h(
        "div",
        { class: "tile" },
        h("span", { class: "tile-value" }, String(Math.round(value))),
        h("span", null, label),
      );
    replace(
      tiles,
      tile("token requests", totals(last, "evergreen_token_requests_total")),
      tile("refreshes", totals(last, "evergreen_refreshes_total")),
      tile("reuse detections", totals(last, "evergreen_refresh_token_reuse_detected_total")),
      tile(
        "failed logins",
        totals(last, "evergreen_password_logins_total", (l) => l.outcome === "failed"),
      ),
      tile("broker refreshes", totals(last, "evergreen_broker_refreshes_total")),
    );
    const n = Math.max(samples.length - 1, 1);
    replace(
      charts,
      lineChart(
        "Token requests by grant and outcome",
        "per second",
        rates(samples, (name, l) =>
          name === "evergreen_token_requests_total" ? `${l.grant_type} → ${l.status}` : null,
        ),
        n,
      ),
      lineChart("Refresh latency", "milliseconds", refreshLatency(samples), n),
      lineChart(
        "Refresh outcomes",
        "per second",
        rates(samples, (name, l) => (name === "evergreen_refreshes_total" ? String(l.outcome) : null)),
        n,
      ),
      lineChart(
        "Reuse detections and failed logins",
        "per minute",
        rates(
          samples,
          (name, l) =>
            name === "evergreen_refresh_token_reuse_detected_total"
              ? "reuse detected"
              : name === "evergreen_password_logins_total" && l.outcome === "failed"
                ? "failed logins"
                : null,
          60,
        ),
        n,
      ),
      lineChart(
        "Broker refreshes by outcome",
        "per second",
        rates(samples, (name, l) => (name === "evergreen_broker_refreshes_total" ? String(l.outcome) : null)),
        n,
      ),
      lineChart(
        "Broker due backlog",
        "connections",
        levels(samples, (name) => (name === "evergreen_broker_due_backlog" ? "due, not leased" : null)),
        n,
      ),
    );
  }

  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  async function poll() {
    try {
      const snap = await api<Snapshot>("GET", "/admin/metrics");
      status.textContent = "";
      samples.push({
        t: performance.now() / 1000,
        values: snap.metrics.flatMap((m) =>
          m.values.map((v) => ({ name: v.metricName ?? m.name, labels: v.labels, value: v.value })),
        ),
      });
      if (samples.length > KEEP) samples.shift();
      if (!stopped) render();
    } catch (err) {
      status.textContent = errorText(err);
    }
    if (!stopped) timer = setTimeout(poll, POLL_MS);
  }
  void poll();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
