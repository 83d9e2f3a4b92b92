/** What one session tells the others that share its storage and storage key. */
export interface SessionMessage {
  type: "refreshed" | "expired" | "logout" | "login";
  /** The storage key the message is about; messages about another key are ignored. */
  key: string;
}

export interface SessionChannel {
  post(type: SessionMessage["type"]): void;
  close(): void;
}

type Handler = (message: SessionMessage) => void;

/** Sessions in this realm, by the storage object they use and then by storage key. */
const local = new WeakMap<object, Map<string, Set<Handler>>>();

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
    const channel = new BroadcastChannel(`evergreen:${key}`);
    (channel as { unref?: () => void }).unref?.();
    channel.onmessage = (event: MessageEvent) => handler(event.data as SessionMessage);
    return {
      post: (type) => channel.postMessage({ type, key }),
      close: () => channel.close(),
    };
  }
  const byKey = local.get(storage) ?? new Map<string, Set<Handler>>();
  local.set(storage, byKey);
  const peers = byKey.get(key) ?? new Set<Handler>();
  byKey.set(key, peers);
  peers.add(handler);
  return {
    post(type) {
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
