import { createHash, timingSafeEqual } from "node:crypto";
import { EmbeddedJWK, type JWK, calculateJwkThumbprint, jwtVerify } from "jose";
import { DpopProofError } from "../errors.ts";
import type { DpopNonces } from "./nonce.ts";
import type { DpopReplayStore } from "./replay-store.ts";

/**
 * Asymmetric algorithms a DPoP proof may be signed with (announced as
 * `dpop_signing_alg_values_supported`). `Ed25519` is the fully-specified name of EdDSA over
 * Ed25519 (RFC 9864) that oauth4webapi emits; symmetric and `none` are never accepted.
 */
export const DPOP_ALGORITHMS: readonly string[] = ["ES256", "ES384", "Ed25519", "EdDSA", "RS256", "PS256"];

/** How far a proof's `iat` may be from the verifier's clock, by default (seconds). */
export const DPOP_DEFAULT_SKEW_SECONDS = 60;

/** JWK members that only a private (or symmetric) key has. */
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const MAX_PROOF_LENGTH = 8192;

/** What a request must prove, and where the verifier keeps its memory. */
export interface DpopProofCheck {
  /** The one `DPoP` header value (see `singleDpopHeader`). */
  proof: string;
  /** The request's method (`htm`). */
  method: string;
  /** The request's URL as the client addressed it, query and fragment ignored (`htu`). */
  url: string;
  /** The access token the proof must hash (`ath`), at a protected resource. */
  accessToken?: string;
  now: Date;
  skewSeconds?: number;
  algorithms?: readonly string[];
  replay: DpopReplayStore;
  /** Server-issued nonces, when this verifier hands them out. */
  nonces?: DpopNonces;
  /** Refuse proofs without a current server nonce (`use_dpop_nonce`). */
  requireNonce?: boolean;
}

export interface VerifiedDpopProof {
  /** The key's JWK SHA-256 thumbprint (RFC 7638), base64url: what tokens are bound to. */
  jkt: string;
  jwk: JWK;
  jti: string;
  iat: number;
}

/**
 * The single `DPoP` header of a request, from Node's raw header list (where repeated headers
 * are still separate): none gives undefined; two or more, or a value that is not a compact JWS,
 * is an invalid proof (RFC 9449 §4.3 checks 1 and 2).
 */
export function singleDpopHeader(rawHeaders: readonly string[]): string | undefined {
  const values: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() === "dpop") values.push(rawHeaders[i + 1]!);
  }
  if (values.length === 0) return undefined;
  if (values.length > 1) throw new DpopProofError("invalid_dpop_proof", "more than one DPoP header");
  const value = values[0]!.trim();
  if (value.length > MAX_PROOF_LENGTH || !COMPACT_JWS.test(value)) {
    throw new DpopProofError("invalid_dpop_proof", "the DPoP header is not a JWT");
  }
  return value;
}

/** `htu` comparison (RFC 9449 §4.3 check 9): scheme, host, port and path; no query or fragment. */
export function normalizeHtu(value: string): string | undefined {
  try {
    const u = new URL(value);
    if (u.protocol !== "https:" && u.protocol !== "http:") return undefined;
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return undefined;
  }
}

/** base64url SHA-256 of an access token (`ath`, RFC 9449 §4.2). */
export function accessTokenHashForDpop(accessToken: string): string {
  return createHash("sha256").update(accessToken).digest("base64url");
}

const invalid = (description: string) => new DpopProofError("invalid_dpop_proof", description);

/**
 * Verifies a DPoP proof per RFC 9449 §4.3: `typ`, an allowed asymmetric `alg`, a public `jwk`
 * that verifies the signature, `htm`, `htu`, `iat` within the window, `ath` when an access
 * token is presented, the server nonce when one is required or offered, and `jti` never seen
 * before within the window (checked last, so only otherwise valid proofs take cache space).
 */
export async function verifyDpopProof(check: DpopProofCheck): Promise<VerifiedDpopProof> {
  const algorithms = check.algorithms ?? DPOP_ALGORITHMS;
  const skew = check.skewSeconds ?? DPOP_DEFAULT_SKEW_SECONDS;
  let payload: Record<string, unknown>;
  let jwk: JWK;
  try {
    const verified = await jwtVerify(check.proof, EmbeddedJWK, {
      typ: "dpop+jwt",
      algorithms: [...algorithms],
      currentDate: check.now,
      clockTolerance: skew,
    });
    payload = verified.payload as Record<string, unknown>;
    jwk = verified.protectedHeader.jwk as JWK;
  } catch {
    throw invalid("the DPoP proof is not a valid signed dpop+jwt with an allowed algorithm and public key");
  }
  if (PRIVATE_MEMBERS.some((m) => m in jwk)) throw invalid("the DPoP proof's jwk must be a public key");

  const { jti, htm, htu, iat, ath, nonce } = payload;
  if (typeof jti !== "string" || jti.length === 0 || jti.length > 256) throw invalid("jti is missing");
  if (htm !== check.method) throw invalid("htm does not match the request method");
  const expected = normalizeHtu(check.url);
  if (typeof htu !== "string" || !expected || normalizeHtu(htu) !== expected) {
    throw invalid("htu does not match the request URL");
  }
  const now = Math.floor(check.now.getTime() / 1000);
  if (typeof iat !== "number" || !Number.isFinite(iat)) throw invalid("iat is missing");
  if (Math.abs(iat - now) > skew) throw invalid("the DPoP proof is outside the acceptable time window");
  if (check.accessToken !== undefined) {
    const want = Buffer.from(accessTokenHashForDpop(check.accessToken));
    const got = Buffer.from(typeof ath === "string" ? ath : "");
    if (got.length !== want.length || !timingSafeEqual(got, want)) {
      throw invalid("ath does not match the access token");
    }
  }
  if (check.nonces) {
    if (nonce === undefined) {
      if (check.requireNonce) throw new DpopProofError("use_dpop_nonce", "a DPoP nonce is required");
    } else if (typeof nonce !== "string" || !check.nonces.isValid(nonce)) {
      throw new DpopProofError("use_dpop_nonce", "the DPoP nonce is invalid or stale");
    }
  } else if (check.requireNonce) {
    throw new DpopProofError("use_dpop_nonce", "a DPoP nonce is required");
  }

  const jkt = await calculateJwkThumbprint(jwk, "sha256");
  // Kept until no clock within the window could accept the proof again.
  const keepUntilMs = (iat + skew + 1) * 1000;
  const first = await check.replay.use(`${jkt}:${jti}`, keepUntilMs, check.now.getTime());
  if (!first) throw invalid("the DPoP proof was already used");
  return { jkt, jwk, jti, iat };
}
