import type { Migration } from "@evergreen/db";

/**
 * The todo API's own tables. They may share a PostgreSQL database with the issuer
 * (DATABASE_URL), so the version sits far from the issuer's own migration numbers, which
 * `migrate()` records in the same table.
 */
export const todoMigrations: Migration[] = [
  {
    version: 10_001,
    name: "todo_example",
    sql: `
CREATE TABLE todo_lists (
  id uuid PRIMARY KEY,
  -- creation order, also among rows created in the same instant
  seq bigint GENERATED ALWAYS AS IDENTITY,
  -- the access token's sub: the API knows users only by what the issuer says
  owner text NOT NULL,
  name text NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX todo_lists_owner ON todo_lists (owner, seq);

CREATE TABLE todo_items (
  id uuid PRIMARY KEY,
  seq bigint GENERATED ALWAYS AS IDENTITY,
  list_id uuid NOT NULL REFERENCES todo_lists (id) ON DELETE CASCADE,
  text text NOT NULL,
  done boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX todo_items_list ON todo_items (list_id, seq);
`,
  },
];
