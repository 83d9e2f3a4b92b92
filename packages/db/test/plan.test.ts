import { afterAll, describe, expect, it } from "vitest";
import { type Database, openPglite, openPostgres, plan } from "../src/index.ts";

const ADMIN_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

describe("plan", () => {
  it("compiles :names to $n in first-use order, one parameter per name", () => {
    const q = plan<{ a: number; b: string }>("SELECT :b, :a, :b");
    expect(q({ a: 1, b: "x" })).toEqual({ text: "SELECT $1, $2, $1", values: ["x", 1] });
  });

  it("leaves casts, quoted literals and identifiers alone", () => {
    const q = plan<{ id: string; tags: string[] }>(
      `SELECT :id::uuid, x::text[], ':not_a_param', '{"k":"v"}'::jsonb, "col:umn", '10:30'::time, :tags::text[]`,
    );
    expect(q({ id: "i", tags: [] })).toEqual({
      text: `SELECT $1::uuid, x::text[], ':not_a_param', '{"k":"v"}'::jsonb, "col:umn", '10:30'::time, $2::text[]`,
      values: ["i", []],
    });
  });

  it("names a prepared statement when given a name, and takes no argument without inputs", () => {
    expect(plan("SELECT 1", "select_one")()).toEqual({ name: "select_one", text: "SELECT 1", values: [] });
  });

  it("fails on first use when the SQL uses a name the value object lacks", () => {
    const q = plan<{ a: number }>("SELECT :a, :b");
    expect(() => q({ a: 1 })).toThrow("no value for :b");
    // null is a value (SQL NULL), not a missing one.
    expect(q({ a: 1, b: null } as { a: number }).values).toEqual([1, null]);
  });

  it("rejects a missing or misspelled input at compile time", () => {
    const q = plan<{ family_id: string }>("SELECT :family_id");
    // @ts-expect-error missing input
    expect(() => q({})).toThrow();
    // @ts-expect-error misspelled input
    expect(() => q({ familyid: "x" })).toThrow();
  });
});

describe.each(["pglite", "postgres"] as const)("bound plans on %s", (kind) => {
  let db: Database;
  afterAll(() => db?.close());

  it("run through query, named or not, with repeated and cast parameters", async () => {
    db = kind === "pglite" ? await openPglite("memory://") : openPostgres(ADMIN_URL, { max: 1 });
    const q = plan<{ n: number; s: string | null }>(
      "SELECT :n::int + :n::int AS twice, (:s::text IS NULL) AS none, ':n' AS literal",
      "plan_test_select",
    );
    for (const s of [null, "x"]) {
      const { rows } = await db.query(q({ n: 21, s }));
      expect(rows).toEqual([{ twice: 42, none: s === null, literal: ":n" }]);
    }
    const unnamed = await db.query(plan("SELECT 1 AS one")());
    expect(unnamed.rows).toEqual([{ one: 1 }]);
  });

  // What the broker's statements pass: arrays (also empty, for `NOT (x = ANY(…))`), JSON as text, bytes.
  it("bind arrays, JSON text and bytes", async () => {
    const q = plan<{ tags: string[]; none: string[]; doc: string; bytes: Buffer }>(
      `SELECT 'b' = ANY(:tags::text[]) AS has_b, NOT ('b' = ANY(:none::text[])) AS not_in_empty,
         cardinality(:tags::text[]) AS n, (:doc::jsonb)->>'k' AS k, :bytes::bytea AS bytes`,
      "plan_test_kinds",
    );
    const { rows } = await db.query(
      q({ tags: ["a", "b"], none: [], doc: JSON.stringify({ k: "v:1" }), bytes: Buffer.from([0, 1, 255]) }),
    );
    expect(rows).toEqual([{ has_b: true, not_in_empty: true, n: 2, k: "v:1", bytes: expect.anything() }]);
    expect(Buffer.from(rows[0]!.bytes as Uint8Array)).toEqual(Buffer.from([0, 1, 255]));
  });
});
