import type { FetchLike } from "../token-response.ts";
import type { DpopKeys } from "./keys.ts";
import { createDpopProof, jwkThumbprint } from "./proof.ts";

export interface DpopFetchOptions {
  /** The fetch that sends the requests. Default: the global fetch. */
  fetch?: FetchLike | undefined;
  /** Epoch milliseconds for `iat`; a session passes the issuer's clock. Default: Date.now. */
  now?: (() => number) | undefined;
}

/** A fetch that proves possession of a DPoP key (RFC 9449) on every request it sends. */
export interface DpopFetch extends FetchLike {
  /** The thumbprint of the key (`jkt`), e.g. for the `dpop_jkt` authorization parameter. */
  thumbprint(): Promise<string>;
}

/**
 * Wraps `fetch` so that every request carries a `DPoP` proof header (`htm`, `htu`, `iat`, a
 * random `jti`, the server's `nonce` when one is known, and `ath` when the request carries
 * `Authorization: DPoP <token>`). Use it for token requests (code exchange, refresh) and for
 * resource requests with DPoP-bound access tokens.
 *
 * Nonces (RFC 9449 §8, §9): the latest `DPoP-Nonce` of any response is kept per origin and put
 * in the next proof to that origin; a request refused for want of one (`400 use_dpop_nonce`
 * from a token endpoint, `401` with `WWW-Authenticate: DPoP error="use_dpop_nonce"` from a
 * resource server) is sent once more with the nonce the refusal carried. A `Request` input is
 * cloned for each send, so its body survives the retry; so do string, Blob, buffer, form and
 * URLSearchParams bodies (a ReadableStream body cannot be sent twice).
 */
export function dpopFetch(keys: DpopKeys, options: DpopFetchOptions = {}): DpopFetch {
  const base: FetchLike = options.fetch ?? ((input, init) => fetch(input, init));
  const now = options.now ?? Date.now;
  const nonces = new Map<string, string>();

  const send = async (input: RequestInfo | URL, init: RequestInit | undefined): Promise<Response> => {
    const request = typeof Request !== "undefined" && input instanceof Request ? input : undefined;
    const url = new URL(request ? request.url : String(input));
    const headers = new Headers(init?.headers ?? request?.headers);
    const authorization = headers.get("authorization");
    const accessToken = /^dpop /i.test(authorization ?? "") ? authorization?.slice(5).trim() : undefined;
    const pair = await keys.keyPair();
    for (let attempt = 0; ; attempt++) {
      headers.set(
        "dpop",
        await createDpopProof(pair, {
          htm: init?.method ?? request?.method ?? "GET",
          htu: url.href,
          iat: Math.floor(now() / 1000),
          nonce: nonces.get(url.origin),
          accessToken,
        }),
      );
      const response = await base(request ? request.clone() : input, { ...init, headers });
      const nonce = response.headers.get("dpop-nonce");
      if (nonce) nonces.set(url.origin, nonce);
      if (attempt > 0 || !nonce || !(await asksForNonce(response))) return response;
      await response.body?.cancel().catch(() => undefined);
    }
  };
  return Object.assign(send, { thumbprint: async () => jwkThumbprint(await keys.keyPair()) });
}

/** Whether a response refuses a proof for lacking the (current) server nonce. */
async function asksForNonce(response: Response): Promise<boolean> {
  if (response.status === 401) {
    const challenge = response.headers.get("www-authenticate") ?? "";
    return /(^|,)\s*dpop\s[\s\S]*error="?use_dpop_nonce/i.test(challenge);
  }
  if (response.status !== 400) return false;
  const body = (await response
    .clone()
    .json()
    .catch(() => undefined)) as { error?: unknown } | undefined;
  return body?.error === "use_dpop_nonce";
}
