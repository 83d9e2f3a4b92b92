import type { SystemProcess } from "./process.ts";

/** A refresh-token server under test: where to POST, how to build the body, how to get tokens. */
export interface RefreshSystem {
  proc: SystemProcess;
  port: number;
  path: string;
  /** The form body refreshing `token` (url-safe tokens: no encoding needed). */
  body(token: string): string;
  /** Mints `n` refresh tokens, each the start of its own family / grant. */
  mint(n: number): Promise<string[]>;
  stop(): Promise<void>;
}
