/** How the client authenticates at the token and revocation endpoints (RFC 6749 §2.3). */
export interface ClientCredentials {
  clientId: string;
  clientSecret?: string | undefined;
  /** Default: `client_secret_basic` when a secret is given, else `none`. */
  authMethod?: "none" | "client_secret_basic" | "client_secret_post" | undefined;
}

const formEncode = (value: string) => encodeURIComponent(value).replace(/%20/g, "+");

/** Adds client authentication to a form body and headers, per the client's auth method. */
export function applyClientAuth(client: ClientCredentials, body: URLSearchParams, headers: Headers): void {
  const method = client.authMethod ?? (client.clientSecret ? "client_secret_basic" : "none");
  if (method === "client_secret_basic") {
    // RFC 6749 §2.3.1: id and secret are form-encoded before base64.
    const pair = `${formEncode(client.clientId)}:${formEncode(client.clientSecret ?? "")}`;
    headers.set("authorization", `Basic ${btoa(pair)}`);
    return;
  }
  body.set("client_id", client.clientId);
  if (method === "client_secret_post") body.set("client_secret", client.clientSecret ?? "");
}

/** A form POST to a token-style endpoint with the client authenticated. */
export function formRequest(client: ClientCredentials, params: Record<string, string | undefined>) {
  const body = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined) body.set(key, value);
  const headers = new Headers({
    "content-type": "application/x-www-form-urlencoded",
    accept: "application/json",
  });
  applyClientAuth(client, body, headers);
  return { method: "POST", headers, body } satisfies RequestInit;
}
