import type { Database } from "@evergreen/db";
import { schemaLock } from "./queries.ts";

// Idempotent, so it runs on every start. It stays out of `evergreen_migrations` on purpose: the
// issuer's readiness check reads the highest version there, and a row of ours would make a
// database whose issuer schema is behind look current.
const TODO_SCHEMA = `
CREATE TABLE IF NOT EXISTS todo_lists (
  id uuid PRIMARY KEY,
  -- creation order, also among rows created in the same instant
  seq bigint GENERATED ALWAYS AS IDENTITY,
  -- the access token's sub: the API knows users only by what the issuer says
  owner text NOT NULL,
  name text NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS todo_lists_owner ON todo_lists (owner, seq);

CREATE TABLE IF NOT EXISTS todo_items (
  id uuid PRIMARY KEY,
  seq bigint GENERATED ALWAYS AS IDENTITY,
  list_id uuid NOT NULL REFERENCES todo_lists (id) ON DELETE CASCADE,
  text text NOT NULL,
  done boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS todo_items_list ON todo_items (list_id, seq);
`;

/**
 * Creates the todo API's tables if they are missing. They may share a PostgreSQL database with
 * the issuer (DATABASE_URL); an advisory lock keeps two processes starting at once apart.
 */
export async function ensureTodoSchema(db: Database): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.query(schemaLock());
    await tx.exec(TODO_SCHEMA);
  });
}
