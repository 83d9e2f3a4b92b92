const LOOPBACK_HOSTS = new Set(["127.0.0.1", "[::1]"]);

function isLoopback(u: URL): boolean {
  return u.protocol === "http:" && LOOPBACK_HOSTS.has(u.hostname);
}

/**
 * Whether `requested` is one of the client's registered redirect URIs. Matching is exact
 * (string comparison, OAuth 2.1 §4.1.1), with one exception from RFC 8252 §7.3: a registered
 * loopback URI (`http://127.0.0.1/...` or `http://[::1]/...`) matches that URI on any port,
 * because a native app listens on whatever port the system gives it. `localhost` gets no such
 * leeway (RFC 8252 §8.3). Private-use schemes (`com.example.app:/cb`) match exactly.
 */
export function matchRedirectUri(registered: readonly string[], requested: string): boolean {
  if (registered.includes(requested)) return true;
  let req: URL;
  try {
    req = new URL(requested);
  } catch {
    return false;
  }
  if (!isLoopback(req) || req.hash || req.username || req.password) return false;
  return registered.some((r) => {
    let reg: URL;
    try {
      reg = new URL(r);
    } catch {
      return false;
    }
    return (
      isLoopback(reg) &&
      reg.hostname === req.hostname &&
      reg.pathname === req.pathname &&
      reg.search === req.search &&
      !reg.username &&
      !reg.password
    );
  });
}
