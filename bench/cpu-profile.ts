/**
 * Summarises a V8 `.cpuprofile` (from `BENCH_SERVER_ARGS="--cpu-prof --cpu-prof-dir=DIR"`):
 * self time by function and by package, so a profile of the refresh path reads in one screen.
 *
 *   node --import tsx bench/cpu-profile.ts DIR/CPU.*.cpuprofile [--top 40]
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

const { values, positionals } = parseArgs({
  options: { top: { type: "string", default: "40" } },
  allowPositionals: true,
});
const top = Number(values.top);

for (const file of positionals) {
  const p = JSON.parse(readFileSync(file, "utf8")) as {
    nodes: Node[];
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++)
    self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byFn = new Map<string, number>();
  const byPkg = new Map<string, number>();
  for (const [id, t] of self) {
    const n = byId.get(id)!;
    const url = n.callFrame.url;
    const short = url
      .replace(/^file:\/\//, "")
      .replace(/.*node_modules\//, "")
      .replace(/.*\/packages\//, "packages/");
    const fn = `${n.callFrame.functionName || "(anonymous)"} ${short}:${n.callFrame.lineNumber + 1}`;
    byFn.set(fn, (byFn.get(fn) ?? 0) + t);
    const pkg = !url
      ? n.callFrame.functionName.startsWith("(")
        ? n.callFrame.functionName
        : "(native)"
      : url.startsWith("node:")
        ? url.split("/")[0]!.replace(/^node:internal.*/, "node:internal")
        : url.includes("node_modules/")
          ? url
              .split("node_modules/")[1]!
              .split("/")
              .slice(0, url.includes("node_modules/@") ? 2 : 1)
              .join("/")
          : url.includes("/packages/")
            ? `packages/${url.split("/packages/")[1]!.split("/")[0]}`
            : url;
    byPkg.set(pkg, (byPkg.get(pkg) ?? 0) + t);
  }
  const pct = (t: number) => `${((100 * t) / total).toFixed(1).padStart(5)} %`;
  process.stdout.write(`${file}: ${(total / 1e6).toFixed(1)} s sampled\n\nby package\n`);
  for (const [k, t] of [...byPkg].sort((a, b) => b[1] - a[1]).slice(0, 20))
    process.stdout.write(`${pct(t)}  ${k}\n`);
  process.stdout.write("\nby function (self)\n");
  for (const [k, t] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top))
    process.stdout.write(`${pct(t)}  ${k}\n`);
}
