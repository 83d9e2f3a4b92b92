import { randomUUID } from "node:crypto";
import { type Clock, type Queryable, isUniqueViolation } from "@evergreen/db";
import { hashPassword } from "../crypto/password.ts";
import { AdminApiError } from "../errors.ts";
import { userQueries } from "../queries.ts";
import { PAGE, clampPage } from "./paging.ts";
import { revokeAllSessions } from "./sessions.ts";
import { isUuid } from "../uuid.ts";

export interface User {
  id: string;
  username: string;
  email: string | null;
  created_at: Date;
  updated_at: Date;
  /** May be granted the `evergreen:admin` scope (sign in to the dashboard). */
  is_admin: boolean;
  /** Set while the user may not log in. */
  disabled_at: Date | null;
}

/** A user as its JSON Schema (schemas.ts) admitted it. */
export interface UserInput {
  username?: unknown;
  password?: unknown;
  email?: unknown;
  admin?: unknown;
  /** true disables the user (ends their sessions, refuses their logins); false enables. */
  disabled?: unknown;
  /** With a new password: end the user's sessions everywhere (default true). */
  revoke_sessions?: unknown;
}

/**
 * Usernames are compared exactly, so the stored name must be its own canonical form: nothing
 * NFKC normalisation would change (full-width letters, ligatures, compatibility forms,
 * decomposed accents). The characters allowed at all are in its JSON Schema (schemas.ts).
 */
export function checkUsername(v: unknown): string {
  if (typeof v === "string" && v.normalize("NFKC") !== v) {
    throw new AdminApiError(
      "invalid_request",
      "username must be in Unicode NFKC form (no compatibility or decomposed characters)",
    );
  }
  return v as string;
}

/** Creates a user with an scrypt password hash. Usernames are unique. */
export async function createUser(db: Queryable, clock: Clock, input: UserInput): Promise<User> {
  const username = checkUsername(input.username);
  const password = input.password as string;
  const email = (input.email ?? null) as string | null;
  const passwordHash = await hashPassword(password);
  try {
    const { rows } = await db.query<User>(
      userQueries.insert({
        id: randomUUID(),
        username,
        email,
        password_hash: passwordHash,
        now: clock.now(),
        is_admin: input.admin === true,
      }),
    );
    return rows[0]!;
  } catch (err) {
    if (isUniqueViolation(err)) throw new AdminApiError("conflict", "a user with this username exists");
    throw err;
  }
}

/** Looks a user up by id or, failing that, by username. */
export async function findUser(db: Queryable, idOrUsername: string): Promise<User> {
  if (isUuid(idOrUsername)) {
    const { rows } = await db.query<User>(userQueries.byId({ id: idOrUsername }));
    if (rows[0]) return rows[0];
  }
  const { rows } = await db.query<User & { password_hash?: string }>(
    userQueries.byUsername({ username: idOrUsername }),
  );
  const u = rows[0];
  if (!u) throw new AdminApiError("not_found", "no such user");
  delete u.password_hash;
  return u;
}

/** A page of users; `q` matches part of the username or email, in any case. */
export async function listUsers(
  db: Queryable,
  limit = PAGE.defaultLimit,
  offset = 0,
  q: string | null = null,
): Promise<User[]> {
  const { rows } = await db.query<User>(userQueries.list({ ...clampPage(limit, offset), q: q || null }));
  return rows;
}

export async function updateUser(
  db: Queryable,
  clock: Clock,
  idOrUsername: string,
  input: UserInput,
): Promise<User> {
  const user = await findUser(db, idOrUsername);
  const username = input.username === undefined ? null : checkUsername(input.username);
  const hasEmail = input.email !== undefined;
  const email = hasEmail ? ((input.email ?? null) as string | null) : null;
  const passwordHash = input.password === undefined ? null : await hashPassword(input.password as string);
  // A changed password is usually a compromised one: sessions opened with the old one end.
  const endSessions = input.revoke_sessions !== false;
  const disable = input.disabled === undefined ? null : input.disabled === true;
  try {
    const { rows } = await db.query<User>(
      userQueries.update({
        id: user.id,
        username,
        set_email: hasEmail,
        email,
        password_hash: passwordHash,
        now: clock.now(),
        end_sessions: endSessions,
        is_admin: input.admin === undefined ? null : input.admin === true,
        disabled: disable,
      }),
    );
    // The statement above already ended every session (credentials version); marking them
    // revoked one by one makes that visible in listings and the audit trail. If the process
    // dies before this, the sessions are dead all the same.
    if ((passwordHash && endSessions) || (disable && !user.disabled_at)) {
      await revokeAllSessions(db, clock, user.id);
    }
    return rows[0]!;
  } catch (err) {
    if (isUniqueViolation(err)) throw new AdminApiError("conflict", "a user with this username exists");
    throw err;
  }
}

/** Deletes a user; their sessions and refresh tokens go with them. */
export async function deleteUser(db: Queryable, idOrUsername: string): Promise<void> {
  const user = await findUser(db, idOrUsername);
  await db.query(userQueries.delete({ id: user.id }));
}
