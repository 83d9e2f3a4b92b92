/**
 * Calls `check` when the page becomes visible again or the network comes back: a laptop waking
 * from sleep or a tab returning from the background re-checks its tokens before its first
 * request. (Native apps call `session.resume()` from their own resume event.) Returns a remover.
 */
export function onWake(check: () => void): () => void {
  const target = globalThis as {
    addEventListener?: typeof addEventListener;
    removeEventListener?: typeof removeEventListener;
  };
  const doc = (globalThis as { document?: Document }).document;
  const visible = () => doc?.visibilityState === "visible" && check();
  doc?.addEventListener("visibilitychange", visible);
  target.addEventListener?.("online", check);
  target.addEventListener?.("pageshow", check);
  return () => {
    doc?.removeEventListener("visibilitychange", visible);
    target.removeEventListener?.("online", check);
    target.removeEventListener?.("pageshow", check);
  };
}
