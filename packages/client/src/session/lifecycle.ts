/**
 * What the session learns from its runtime about the app coming back and the network. The
 * default reads the browser's events; tests and native apps inject their own (React Native:
 * AppState and NetInfo), as they inject the clock and `fetch`.
 */
export interface Lifecycle {
  /** Calls `check` when the app comes back (page visible again, network back); returns a remover. */
  onWake(check: () => void): () => void;
  /** Resolves when the runtime says it is online (at once where it cannot tell). */
  whenOnline(): Promise<void>;
}

type EventTarget = {
  addEventListener?: typeof addEventListener;
  removeEventListener?: typeof removeEventListener;
};

/**
 * The browser's signals: `visibilitychange` (to visible), `online` and `pageshow` wake the
 * session, so a laptop waking from sleep or a tab returning from the background re-checks its
 * tokens before its first request; `navigator.onLine` gates retries. Where these do not exist
 * (Node) nothing wakes the session and it counts as online; native apps call `session.resume()`
 * from their own resume event or pass their own `Lifecycle`.
 */
export const browserLifecycle: Lifecycle = {
  onWake(check) {
    const target = globalThis as EventTarget;
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
  },
  whenOnline() {
    const target = globalThis as EventTarget & { navigator?: { onLine?: boolean } };
    if (target.navigator?.onLine !== false || !target.addEventListener) return Promise.resolve();
    return new Promise((resolve) => target.addEventListener?.("online", () => resolve(), { once: true }));
  },
};
