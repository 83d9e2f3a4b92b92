import type { BoundQuery } from "./plan.ts";

/**
 * The one data-access interface. PostgreSQL (`pg`) and embedded PGlite both implement it,
 * so every query in Evergreen is written once, in the PostgreSQL dialect both speak.
 */
export interface QueryResult<T> {
  rows: T[];
  rowCount: number;
}

/**
 * A statement with a stable name. On PostgreSQL it becomes a server-side prepared statement
 * (parsed and planned once per connection), which matters on the refresh hot path.
 */
export interface Statement {
  name: string;
  text: string;
}

export interface Queryable {
  /**
   * Runs one statement: a bound plan (`plan.ts`, values included), or text / a `Statement`
   * with positional `params`.
   */
  query<T = Record<string, unknown>>(
    sql: string | Statement | BoundQuery,
    params?: unknown[],
  ): Promise<QueryResult<T>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(script: string): Promise<void>;
}

export interface Notification {
  channel: string;
  payload: string;
}

export interface Database extends Queryable {
  readonly kind: "postgres" | "pglite";
  /** Runs `fn` in one transaction; commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** LISTEN on a channel; resolves to a function that stops listening. */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/**
 * Declares a named statement run with positional params; names must be unique across the
 * codebase. Prefer `plan` (named parameters): this stays only for positional SQL not yet converted.
 */
export function statement(name: string, text: string): Statement {
  return { name, text };
}

/** True when `err` is a PostgreSQL unique-violation, on either driver. */
export function isUniqueViolation(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as { code?: string }).code === "23505";
}
