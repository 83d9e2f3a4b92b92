import type { FastifyRequest } from "fastify";
import type { Client, ClientRegistry } from "./clients.ts";
import { digestsEqual, sha256 } from "./crypto/opaque-token.ts";
import { OAuthError } from "./errors.ts";
import { type FormParams, param } from "./form-body.ts";

const BASIC_CHALLENGE = { "WWW-Authenticate": 'Basic realm="evergreen", charset="UTF-8"' };

function parseBasic(header: string): { id: string; secret: string } {
  const encoded = header.slice(6).trim();
  const decoded = Buffer.from(encoded, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0 || decoded.includes("\u0000"))
    throw new OAuthError("invalid_client", "malformed Basic credentials", BASIC_CHALLENGE);
  try {
    // RFC 6749 §2.3.1: id and secret are form-urlencoded before base64.
    const id = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, " "));
    const secret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, " "));
    if (id.includes("\u0000") || secret.includes("\u0000")) throw new Error("NUL");
    return { id, secret };
  } catch {
    throw new OAuthError("invalid_client", "malformed Basic credentials", BASIC_CHALLENGE);
  }
}

/**
 * Authenticates the client of a token, revocation or introspection request with exactly one
 * method: Basic (client_secret_basic), body secret (client_secret_post), or client_id alone
 * (public clients, "none"). The method must be the one the client registered.
 */
export async function authenticateClient(
  req: FastifyRequest,
  params: FormParams,
  registry: ClientRegistry,
): Promise<Client> {
  const authz = req.headers.authorization;
  const basic = authz?.toLowerCase().startsWith("basic ") ? parseBasic(authz) : undefined;
  const bodyId = param(params, "client_id");
  const bodySecret = param(params, "client_secret");
  if (basic && bodySecret !== undefined) {
    throw new OAuthError("invalid_request", "use one client authentication method, not several");
  }
  if (basic && bodyId !== undefined && bodyId !== basic.id) {
    throw new OAuthError("invalid_request", "client_id does not match the authenticated client");
  }
  const clientId = basic?.id ?? bodyId;
  if (!clientId) throw new OAuthError("invalid_client", "client authentication required", BASIC_CHALLENGE);
  const method = basic ? "client_secret_basic" : bodySecret !== undefined ? "client_secret_post" : "none";
  const failHeaders = basic ? BASIC_CHALLENGE : {};

  const client = await registry.get(clientId);
  if (!client) throw new OAuthError("invalid_client", "client authentication failed", failHeaders);
  if (client.token_endpoint_auth_method !== method) {
    throw new OAuthError(
      "invalid_client",
      method === "none"
        ? "client authentication failed: this client must authenticate"
        : "client authentication failed",
      failHeaders,
    );
  }
  if (method !== "none") {
    const secret = basic?.secret ?? bodySecret ?? "";
    // Hash first, compare digests in constant time: length and content of the secret leak nothing.
    if (!client.secret_hash || !digestsEqual(sha256(secret), client.secret_hash)) {
      throw new OAuthError("invalid_client", "client authentication failed", failHeaders);
    }
  }
  return client;
}
