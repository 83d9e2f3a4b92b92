/**
 * A PostgreSQL adapter for oidc-provider, written the way its documentation asks for one: a
 * JSONB table per model, upsert, find (expired rows are not returned), findByUid,
 * findByUserCode, destroy, revokeByGrantId, and an atomic `consume` (UPDATE … WHERE consumed
 * IS NULL). Statements are named, so `pg` prepares each once per connection.
 */
import type pg from "pg";

const MODELS = [
  "Session",
  "AccessToken",
  "AuthorizationCode",
  "RefreshToken",
  "DeviceCode",
  "ClientCredentials",
  "Client",
  "InitialAccessToken",
  "RegistrationAccessToken",
  "Interaction",
  "ReplayDetection",
  "PushedAuthorizationRequest",
  "Grant",
  "BackchannelAuthenticationRequest",
];

type Payload = Record<string, unknown> & { grantId?: string; uid?: string; userCode?: string };

function table(model: string): string {
  return `oidc_${model.toLowerCase()}`;
}

export async function createOidcTables(pool: pg.Pool): Promise<void> {
  for (const model of MODELS) {
    const t = table(model);
    await pool.query(`CREATE TABLE IF NOT EXISTS ${t} (
      id text PRIMARY KEY,
      payload jsonb NOT NULL,
      grant_id text,
      uid text,
      user_code text,
      expires_at timestamptz,
      consumed_at timestamptz
    )`);
    await pool.query(`CREATE INDEX IF NOT EXISTS ${t}_grant ON ${t} (grant_id)`);
    await pool.query(`CREATE INDEX IF NOT EXISTS ${t}_uid ON ${t} (uid)`);
    await pool.query(`CREATE INDEX IF NOT EXISTS ${t}_user_code ON ${t} (user_code)`);
  }
}

function row(r: { payload: Payload; consumed_at: Date | null } | undefined): Payload | undefined {
  if (!r) return undefined;
  return r.consumed_at ? { ...r.payload, consumed: Math.floor(r.consumed_at.getTime() / 1000) } : r.payload;
}

/** Returns the adapter class oidc-provider instantiates once per model. */
export function pgAdapter(pool: pg.Pool) {
  return class PgAdapter {
    private readonly t: string;
    private readonly name: string;
    constructor(model: string) {
      this.t = table(model);
      this.name = model.toLowerCase();
    }

    async upsert(id: string, payload: Payload, expiresIn?: number): Promise<void> {
      await pool.query({
        name: `${this.name}_upsert`,
        text: `INSERT INTO ${this.t} (id, payload, grant_id, uid, user_code, expires_at)
               VALUES ($1, $2, $3, $4, $5, CASE WHEN $6::int IS NULL THEN NULL ELSE now() + make_interval(secs => $6::int) END)
               ON CONFLICT (id) DO UPDATE SET payload = excluded.payload, grant_id = excluded.grant_id,
                 uid = excluded.uid, user_code = excluded.user_code, expires_at = excluded.expires_at`,
        values: [
          id,
          payload,
          payload.grantId ?? null,
          payload.uid ?? null,
          payload.userCode ?? null,
          expiresIn ?? null,
        ],
      });
    }

    async find(id: string): Promise<Payload | undefined> {
      const { rows } = await pool.query({
        name: `${this.name}_find`,
        text: `SELECT payload, consumed_at FROM ${this.t} WHERE id = $1 AND (expires_at IS NULL OR expires_at > now())`,
        values: [id],
      });
      return row(rows[0]);
    }

    async findByUid(uid: string): Promise<Payload | undefined> {
      const { rows } = await pool.query({
        name: `${this.name}_find_uid`,
        text: `SELECT payload, consumed_at FROM ${this.t} WHERE uid = $1 AND (expires_at IS NULL OR expires_at > now())`,
        values: [uid],
      });
      return row(rows[0]);
    }

    async findByUserCode(userCode: string): Promise<Payload | undefined> {
      const { rows } = await pool.query({
        name: `${this.name}_find_user_code`,
        text: `SELECT payload, consumed_at FROM ${this.t} WHERE user_code = $1 AND (expires_at IS NULL OR expires_at > now())`,
        values: [userCode],
      });
      return row(rows[0]);
    }

    /** Atomic: only the first consume of a row takes effect. */
    async consume(id: string): Promise<void> {
      await pool.query({
        name: `${this.name}_consume`,
        text: `UPDATE ${this.t} SET consumed_at = now() WHERE id = $1 AND consumed_at IS NULL RETURNING id`,
        values: [id],
      });
    }

    async destroy(id: string): Promise<void> {
      await pool.query({
        name: `${this.name}_destroy`,
        text: `DELETE FROM ${this.t} WHERE id = $1`,
        values: [id],
      });
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await pool.query({
        name: `${this.name}_revoke_grant`,
        text: `DELETE FROM ${this.t} WHERE grant_id = $1`,
        values: [grantId],
      });
    }
  };
}
