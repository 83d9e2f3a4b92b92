/**
 * SQL with named parameters. A statement is written once with `:name` placeholders and a type
 * describing its inputs; calling it with a named object gives the `{name, text, values}` that
 * `Queryable.query` runs. Positional arrays built far from their SQL let a caller pass the
 * wrong value for `$5` unnoticed (or a statement refer to a `$2` nobody passes); here a missing
 * or misspelled input is a compile error, and a placeholder the type forgot fails on first use.
 */

/** A statement bound to its values: what `Queryable.query` executes. */
export interface BoundQuery {
  /** Set for server-side prepared statements (PostgreSQL parses and plans them once per connection). */
  name?: string;
  text: string;
  values: unknown[];
}

/**
 * A statement waiting for its inputs `P` (a plan without inputs is called with no argument).
 * Deliberately a bare function with no `text`: an unbound plan cannot be passed to `query`.
 */
export type Plan<P extends object> = (
  ...params: [keyof P] extends [never] ? [params?: P] : [params: P]
) => BoundQuery;

// A quoted literal or identifier (skipped: `':x'` is data, not a placeholder), or a `:name` not
// preceded by a colon or a word character, so PostgreSQL casts (`:id::uuid`, `x::text[]`) and
// times inside words stay as they are.
const TOKEN = /'(?:[^']|'')*'|"(?:[^"]|"")*"|(?<![:\w]):([A-Za-z_]\w*)/g;

/**
 * Compiles `text` (with `:name` placeholders) to `$n` form once, at module load. A name used
 * twice is one parameter. `name` makes it a named prepared statement; names must be unique
 * across the codebase.
 */
export function plan<P extends object = Record<never, never>>(text: string, name?: string): Plan<P> {
  const order: string[] = [];
  const compiled = text.replace(TOKEN, (match, key: string | undefined) => {
    if (key === undefined) return match;
    let index = order.indexOf(key);
    if (index < 0) index = order.push(key) - 1;
    return `$${index + 1}`;
  });
  return (...args) => {
    const params = (args[0] ?? {}) as Record<string, unknown>;
    const values = order.map((key) => {
      if (!Object.hasOwn(params, key)) throw new Error(`query ${name ?? "(unnamed)"}: no value for :${key}`);
      return params[key];
    });
    return name === undefined ? { text: compiled, values } : { name, text: compiled, values };
  };
}
