import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";

// scrypt at N=2^15, r=8 (~32 MiB, tens of ms): memory-hard, in node's standard library.
const N = 32768;
const R = 8;
const P = 1;
const KEYLEN = 32;
const MAXMEM = 64 * 1024 * 1024;

function derive(password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, KEYLEN, { N: n, r, p, maxmem: MAXMEM }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

/** Hashes a password as `scrypt$N$r$p$salt$hash` (base64url parts). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, N, R, P);
  return `scrypt$${N}$${R}$${P}$${salt.toString("base64url")}$${key.toString("base64url")}`;
}

// Verifying against this when the user does not exist makes an unknown username cost exactly
// one scrypt of the same parameters as a known one (a fixed value: no first-call extra hash).
// Its password was random and thrown away; nothing verifies against it successfully.
const DUMMY_HASH = "scrypt$32768$8$1$g_4EOoWiW2I5FmzdfyoQSw$gTwljjcxZ4Fboc0nb9Zs-yDbOt8lkFOzNLhaeRtqQu8";

/** Constant-time check of `password` against a stored hash; `stored` undefined still costs one hash. */
export async function verifyPassword(password: string, stored: string | undefined): Promise<boolean> {
  const target = stored ?? DUMMY_HASH;
  const [scheme, n, r, p, salt, hash] = target.split("$");
  if (scheme !== "scrypt" || !n || !r || !p || !salt || !hash) return false;
  const expected = Buffer.from(hash, "base64url");
  const actual = await derive(password, Buffer.from(salt, "base64url"), Number(n), Number(r), Number(p));
  return timingSafeEqual(actual, expected) && stored !== undefined;
}
