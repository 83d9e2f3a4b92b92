import { plan } from "@evergreen/db";

/** Every statement of the todo API. Each one is scoped by `owner`, so no route can forget it. */

export interface ListRow {
  id: string;
  name: string;
  created_at: Date;
  updated_at: Date;
  items_total: number;
  items_done: number;
}

export interface ItemRow {
  id: string;
  list_id: string;
  text: string;
  done: boolean;
  created_at: Date;
  updated_at: Date;
}

/** Serialises schema creation between processes (any constant; the same in each). */
export const schemaLock = plan("SELECT pg_advisory_xact_lock(7402617001)");

/** Most lists (and items per list) one response carries. */
export const MAX_ROWS = 500;

export const listLists = plan<{ owner: string; limit: number }>(
  `SELECT l.id, l.name, l.created_at, l.updated_at,
          count(i.id)::int AS items_total, count(i.id) FILTER (WHERE i.done)::int AS items_done
     FROM todo_lists l LEFT JOIN todo_items i ON i.list_id = l.id
    WHERE l.owner = :owner
    GROUP BY l.id
    ORDER BY l.seq
    LIMIT :limit`,
);

export const findList = plan<{ owner: string; id: string }>(
  `SELECT l.id, l.name, l.created_at, l.updated_at,
          (SELECT count(*)::int FROM todo_items i WHERE i.list_id = l.id) AS items_total,
          (SELECT count(*)::int FROM todo_items i WHERE i.list_id = l.id AND i.done) AS items_done
     FROM todo_lists l
    WHERE l.id = :id AND l.owner = :owner`,
);

export const insertList = plan<{ id: string; owner: string; name: string; now: Date }>(
  `INSERT INTO todo_lists (id, owner, name, created_at, updated_at)
   VALUES (:id, :owner, :name, :now, :now)
   RETURNING id, name, created_at, updated_at, 0 AS items_total, 0 AS items_done`,
);

export const renameList = plan<{ id: string; owner: string; name: string; now: Date }>(
  `UPDATE todo_lists SET name = :name, updated_at = :now
    WHERE id = :id AND owner = :owner
   RETURNING id`,
);

export const deleteList = plan<{ id: string; owner: string }>(
  "DELETE FROM todo_lists WHERE id = :id AND owner = :owner RETURNING id",
);

export const listItems = plan<{ owner: string; list_id: string; limit: number }>(
  `SELECT i.id, i.list_id, i.text, i.done, i.created_at, i.updated_at
     FROM todo_items i JOIN todo_lists l ON l.id = i.list_id
    WHERE i.list_id = :list_id AND l.owner = :owner
    ORDER BY i.seq
    LIMIT :limit`,
);

export const insertItem = plan<{ id: string; owner: string; list_id: string; text: string; now: Date }>(
  `INSERT INTO todo_items (id, list_id, text, done, created_at, updated_at)
   SELECT :id, l.id, :text, false, :now, :now FROM todo_lists l WHERE l.id = :list_id AND l.owner = :owner
   RETURNING id, list_id, text, done, created_at, updated_at`,
);

/** `text` or `done` may be null: that field stays as it is. */
export const updateItem = plan<{
  id: string;
  owner: string;
  list_id: string;
  text: string | null;
  done: boolean | null;
  now: Date;
}>(
  `UPDATE todo_items i
      SET text = COALESCE(:text::text, i.text), done = COALESCE(:done::boolean, i.done), updated_at = :now
     FROM todo_lists l
    WHERE i.id = :id AND i.list_id = :list_id AND l.id = i.list_id AND l.owner = :owner
   RETURNING i.id, i.list_id, i.text, i.done, i.created_at, i.updated_at`,
);

export const deleteItem = plan<{ id: string; owner: string; list_id: string }>(
  `DELETE FROM todo_items i USING todo_lists l
    WHERE i.id = :id AND i.list_id = :list_id AND l.id = i.list_id AND l.owner = :owner
   RETURNING i.id`,
);
