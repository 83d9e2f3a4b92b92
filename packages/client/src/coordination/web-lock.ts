import type { Lock } from "./lock.ts";

interface LockManagerLike {
  request<T>(name: string, options: { mode: "exclusive" }, fn: () => Promise<T>): Promise<T>;
}

/** The Web Locks API (`navigator.locks`) when this runtime has it: one holder across all tabs. */
export function webLock(): Lock | undefined {
  const locks = (globalThis.navigator as { locks?: LockManagerLike } | undefined)?.locks;
  if (!locks?.request) return undefined;
  return { run: (name, fn) => locks.request(name, { mode: "exclusive" }, fn) };
}
