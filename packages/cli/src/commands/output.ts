/** Prints objects as aligned "key  value" lines, lists as tables, or JSON with --json. */
export function print(value: unknown, json = false): void {
  if (json || typeof value !== "object" || value === null) {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    return;
  }
  if (Array.isArray(value)) {
    if (value.length === 0) {
      process.stdout.write("(none)\n");
      return;
    }
    const cols = Object.keys(value[0] as object).filter((k) => !["created_at", "updated_at"].includes(k));
    const cell = (v: unknown) =>
      v === null || v === undefined ? "-" : Array.isArray(v) ? v.join(",") : String(v);
    const widths = cols.map((c) =>
      Math.max(c.length, ...value.map((r) => cell((r as Record<string, unknown>)[c]).length)),
    );
    const line = (cells: string[]) =>
      `${cells
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd()}\n`;
    process.stdout.write(line(cols));
    for (const r of value)
      process.stdout.write(line(cols.map((c) => cell((r as Record<string, unknown>)[c]))));
    return;
  }
  const entries = Object.entries(value as Record<string, unknown>);
  const width = Math.max(...entries.map(([k]) => k.length));
  for (const [k, v] of entries) {
    process.stdout.write(`${k.padEnd(width)}  ${Array.isArray(v) ? v.join(" ") : String(v ?? "-")}\n`);
  }
}
