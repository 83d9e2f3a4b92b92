import { createHmac } from "node:crypto";
import { openWithKey, sealWithKey } from "../crypto/secret-box.ts";

/*
 * Why successors are sealed under the presented token.
 *
 * When a refresh token is rotated, its successor is kept on the consumed row for the client's
 * grace window, encrypted with a key derived from the *consumed token itself*. A retry of that
 * token inside the window (a second tab, a response lost on the network) can then be answered
 * with the very same successor, so the family stays one linear chain with one live token,
 * instead of forking (Hydra) or logging the user out (oidc-provider, Keycloak). The database
 * alone cannot open the sealed value: only a holder of the old token can, and that is exactly
 * who was entitled to the successor. After the window the seal is dropped and a presentation of
 * the old token is reuse.
 */

function keyFor(presentedToken: string): Buffer {
  return createHmac("sha256", presentedToken).update("evergreen/successor-seal/v1").digest();
}

export function sealSuccessor(presentedToken: string, presentedHash: Buffer, successor: string): Buffer {
  return sealWithKey("s1", keyFor(presentedToken), Buffer.from(successor, "utf8"), presentedHash);
}

/** Returns the successor, or undefined if the seal does not open with this token. */
export function openSuccessor(
  presentedToken: string,
  presentedHash: Buffer,
  sealed: Buffer,
): string | undefined {
  try {
    return openWithKey(keyFor(presentedToken), sealed, presentedHash).toString("utf8");
  } catch {
    return undefined;
  }
}
