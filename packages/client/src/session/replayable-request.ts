import { BodyNotReplayableError } from "../errors.ts";

export type Attempt = (authorization: string) => [RequestInfo | URL, RequestInit | undefined];

/**
 * Prepares a request so it can be sent twice (once, and again after a refresh) with the same
 * method, headers and body. Strings, blobs, buffers, form data and URLSearchParams are reused
 * as they are; a Request object is cloned per attempt (its body buffered by the clone); a
 * ReadableStream body is read into memory if `bufferStreams`, else refused up front.
 */
export async function replayableRequest(
  input: RequestInfo | URL,
  init: RequestInit | undefined,
  bufferStreams: boolean,
): Promise<Attempt> {
  let body = init?.body ?? null;
  if (typeof ReadableStream !== "undefined" && body instanceof ReadableStream) {
    if (!bufferStreams) throw new BodyNotReplayableError();
    body = await new Response(body).arrayBuffer();
  }
  if (typeof Request !== "undefined" && input instanceof Request) {
    const template = init ? new Request(input, { ...init, body }) : input;
    if (template.bodyUsed) throw new BodyNotReplayableError();
    let spare = template.clone();
    return (authorization) => {
      const request = spare;
      spare = request.clone();
      request.headers.set("authorization", authorization);
      return [request, undefined];
    };
  }
  return (authorization) => {
    const headers = new Headers(init?.headers);
    headers.set("authorization", authorization);
    return [input, { ...init, body, headers }];
  };
}

/**
 * Whether a 401 says the access token was rejected (and a refresh may help). Browsers hide
 * `WWW-Authenticate` on cross-origin responses unless exposed, so a 401 without a readable
 * challenge counts; a challenge naming another error (e.g. `invalid_request`) does not.
 */
export function isTokenRejected(response: Response): boolean {
  if (response.status !== 401) return false;
  const challenge = response.headers.get("www-authenticate");
  const error = challenge && /error="?([\w.-]+)/i.exec(challenge)?.[1];
  return !error || error === "invalid_token";
}
