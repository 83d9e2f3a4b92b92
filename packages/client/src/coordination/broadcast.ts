/** What one session tells the others that share its storage and storage key. */
export interface SessionMessage {
  type: "refreshed" | "expired" | "logout" | "login";
  /** The storage key the message is about; messages about another key are ignored. */
  key: string;
  /**
   * With `refreshed` and `login`: the record just stored, as stored. A tab's view of
   * localStorage may lag another tab's write (Chromium hands it over asynchronously); the
   * message does not.
   */
  session?: string | undefined;
  /** Tells a sender its own message apart when it comes back. */
  id?: string;
}

export interface SessionChannel {
  /**
   * Tells the other sessions. Resolves once the message has been handed out to every listener
   * (its echo came back; at most a second), so a lock released afterwards is not granted to a
   * tab before the message is on its way there.
   */
  post(type: SessionMessage["type"], session?: string): Promise<void>;
  close(): void;
}

type Handler = (message: SessionMessage) => void;

/** Sessions in this realm, by the storage object they use and then by storage key. */
const local = new WeakMap<object, Map<string, Set<Handler>>>();
let sent = 0;

/**
 * Tells the sessions that share `storage` under `key` about logins, refreshes and endings.
 *
 * Across realms (tabs, workers) only when the storage is shared between them (`shared`:
 * localStorage, IndexedDB), over a BroadcastChannel named after the key; that channel is
 * unref'd so it never keeps a Node process alive. Otherwise only sessions in this realm using
 * the very same storage object hear each other: two sessions with separate memory or
 * sessionStorage stores, or two users' sessions in one Node service, never do.
 * A sender does not hear its own messages.
 */
export function sessionChannel(
  storage: object,
  key: string,
  shared: boolean,
  onMessage: Handler,
): SessionChannel {
  const handler: Handler = (message) => {
    if (message?.key === key) onMessage(message);
  };
  if (shared && typeof BroadcastChannel !== "undefined") {
    const name = `evergreen:${key}`;
    const open = () => {
      const channel = new BroadcastChannel(name);
      (channel as { unref?: () => void }).unref?.();
      return channel;
    };
    const channel = open();
    channel.onmessage = (event: MessageEvent) => handler(event.data as SessionMessage);
    return {
      post: (type, session) =>
        new Promise((resolve) => {
          // A second channel of our own hears the message once the browser has fanned it out.
          const id = `${++sent}:${Math.random()}`;
          const echo = open();
          const done = () => {
            clearTimeout(timer);
            echo.close();
            resolve();
          };
          const timer = setTimeout(done, 1000);
          (timer as { unref?: () => void }).unref?.();
          echo.onmessage = (event: MessageEvent) => (event.data as SessionMessage)?.id === id && done();
          try {
            channel.postMessage({ type, key, session, id });
          } catch {
            done(); // closed by dispose(): nobody to tell from here
          }
        }),
      close: () => channel.close(),
    };
  }
  const byKey = local.get(storage) ?? new Map<string, Set<Handler>>();
  local.set(storage, byKey);
  const peers = byKey.get(key) ?? new Set<Handler>();
  byKey.set(key, peers);
  peers.add(handler);
  return {
    // Without the record: these sessions share one storage object, whose reads are current.
    async post(type) {
      for (const peer of peers) {
        if (peer !== handler) queueMicrotask(() => peers.has(peer) && peer({ type, key }));
      }
    },
    close() {
      peers.delete(handler);
      if (peers.size === 0) byKey.delete(key);
    },
  };
}
