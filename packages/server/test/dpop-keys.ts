/**
 * DPoP proofs for the tests, made with jose (a library we did not write): a key pair, its
 * thumbprint, and proofs with every field overridable so each check can be broken on its own.
 */
import { createHash, randomUUID } from "node:crypto";
import { request } from "node:http";
import { type JWK, SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair } from "jose";
import type { HttpResult } from "./helpers.ts";

export interface DpopKey {
  alg: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
  privateJwk: JWK;
  jkt: string;
}

export async function dpopKey(alg = "ES256"): Promise<DpopKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  return {
    alg,
    privateKey: privateKey as CryptoKey,
    publicJwk,
    privateJwk: await exportJWK(privateKey),
    jkt: await calculateJwkThumbprint(publicJwk, "sha256"),
  };
}

export interface ProofOptions {
  htu: string;
  htm?: string;
  /** Seconds since the epoch; default now (Date.now or `now`). */
  iat?: number;
  now?: Date;
  jti?: string | null;
  accessToken?: string;
  nonce?: string;
  typ?: string;
  /** Replaces the header's jwk (a private key, another key's). */
  jwk?: JWK;
  /** Signs with this key instead (a signature that does not match the jwk). */
  signWith?: CryptoKey;
}

export async function makeProof(key: DpopKey, o: ProofOptions): Promise<string> {
  const iat = o.iat ?? Math.floor((o.now ?? new Date()).getTime() / 1000);
  const claims: Record<string, unknown> = { htm: o.htm ?? "POST", htu: o.htu, iat };
  if (o.jti !== null) claims.jti = o.jti ?? randomUUID();
  if (o.accessToken) claims.ath = createHash("sha256").update(o.accessToken).digest("base64url");
  if (o.nonce) claims.nonce = o.nonce;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, typ: o.typ ?? "dpop+jwt", jwk: o.jwk ?? key.publicJwk })
    .sign(o.signWith ?? key.privateKey);
}

/** A request with each header sent on its own line (fetch would join repeated headers). */
export function rawRequest(
  url: string,
  method: string,
  headers: Record<string, string | string[]>,
  body?: string,
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (text += c));
      res.on("end", () => {
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === "string") h.set(k, v);
        let parsed: unknown;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          parsed = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: h, body: parsed, text });
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}
