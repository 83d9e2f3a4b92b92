/** What a result was measured on: cores, CPU, Node, PostgreSQL and the settings that matter. */
import { readdirSync, readFileSync } from "node:fs";
import { availableParallelism, cpus, hostname, loadavg, totalmem } from "node:os";
import pg from "pg";

export interface MachineInfo {
  hostname: string;
  cores: number;
  cpu_model: string;
  memory_gib: number;
  node: string;
  load_average: number[];
  postgres?: Record<string, string>;
}

const PG_SETTINGS = [
  "server_version",
  "synchronous_commit",
  "fsync",
  "full_page_writes",
  "wal_sync_method",
  "shared_buffers",
  "max_connections",
  "work_mem",
];

export async function machineInfo(databaseUrl?: string): Promise<MachineInfo> {
  const info: MachineInfo = {
    hostname: hostname(),
    cores: availableParallelism(),
    cpu_model: cpus()[0]?.model ?? "unknown",
    memory_gib: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    load_average: loadavg().map((x) => Number(x.toFixed(2))),
  };
  if (databaseUrl) {
    const c = new pg.Client({ connectionString: databaseUrl });
    await c.connect();
    try {
      const { rows } = await c.query<{ name: string; setting: string }>(
        "SELECT name, current_setting(name) AS setting FROM pg_settings WHERE name = ANY($1)",
        [PG_SETTINGS],
      );
      info.postgres = Object.fromEntries(rows.map((r) => [r.name, r.setting]));
    } finally {
      await c.end();
    }
  }
  return info;
}

/** CPU seconds (user + system) used so far by `pid` and every process below it. */
export function treeCpuSeconds(pid: number): number {
  const ticks = 100; // USER_HZ on Linux
  const children = new Map<number, number[]>();
  const own = new Map<number, number>();
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return Number.NaN;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, "utf8");
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const p = Number(e);
      const ppid = Number(rest[1]);
      own.set(p, (Number(rest[11]) + Number(rest[12])) / ticks);
      const list = children.get(ppid) ?? [];
      list.push(p);
      children.set(ppid, list);
    } catch {
      // the process ended while we looked
    }
  }
  let sum = 0;
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    sum += own.get(p) ?? 0;
    stack.push(...(children.get(p) ?? []));
  }
  return sum;
}
