import { h } from "./dom.ts";

const SVG = "http://www.w3.org/2000/svg";

function svg(tag: string, attrs: Record<string, string | number>): SVGElement {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

export interface Series {
  name: string;
  /** One value per sample, null where there is none yet. */
  values: (number | null)[];
}

/** A round upper bound for the y axis. */
function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

const fmt = (v: number) =>
  Math.abs(v) >= 100 || v === 0 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(1) : v.toFixed(2);

/**
 * A line chart drawn as SVG (no library, no inline styles: colours come from classes in
 * app.css). The legend lists each series with its latest value, which is also the chart's
 * text alternative.
 */
export function lineChart(title: string, unit: string, series: Series[], samples: number): HTMLElement {
  const W = 600;
  const H = 170;
  const L = 44;
  const T = 8;
  const B = 18;
  const plotW = W - L - 8;
  const plotH = H - T - B;
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values.filter((v): v is number => v !== null))));
  const root = svg("svg", {
    viewBox: `0 0 ${W} ${H}`,
    class: "chart",
    "aria-hidden": "true",
    focusable: "false",
  });
  for (const f of [0, 0.5, 1]) {
    const y = T + plotH - f * plotH;
    root.append(svg("line", { x1: L, x2: W - 8, y1: y, y2: y, class: "grid" }));
    const label = svg("text", { x: L - 6, y: y + 4, class: "axis", "text-anchor": "end" });
    label.textContent = fmt(max * f);
    root.append(label);
  }
  const step = samples > 1 ? plotW / (samples - 1) : plotW;
  series.forEach((s, i) => {
    const points: string[] = [];
    const offset = samples - s.values.length;
    s.values.forEach((v, j) => {
      if (v === null) return;
      points.push(`${(L + (offset + j) * step).toFixed(1)},${(T + plotH - (v / max) * plotH).toFixed(1)}`);
    });
    if (points.length > 0)
      root.append(svg("polyline", { points: points.join(" "), class: `line s${i % 8}` }));
  });
  const latest = (s: Series) => {
    for (let j = s.values.length - 1; j >= 0; j--) if (s.values[j] !== null) return s.values[j]!;
    return null;
  };
  return h(
    "figure",
    { class: "chart-card" },
    h("figcaption", null, title, h("span", { class: "muted" }, ` (${unit})`)),
    root,
    series.length === 0
      ? h("p", { class: "muted" }, "No data yet.")
      : h(
          "ul",
          { class: "legend" },
          series.map((s, i) => {
            const v = latest(s);
            return h(
              "li",
              null,
              h("span", { class: `swatch s${i % 8}` }),
              `${s.name}: `,
              h("strong", null, v === null ? "—" : fmt(v)),
            );
          }),
        ),
  );
}
