/** What one tab tells the others about the session they share. */
export type SessionMessage =
  | { type: "refreshed" }
  | { type: "expired" }
  | { type: "logout" }
  | { type: "login" };

export interface SessionChannel {
  post(message: SessionMessage): void;
  close(): void;
}

/** A BroadcastChannel for `name` when the runtime has one; messages from this tab are not echoed. */
export function sessionChannel(
  name: string,
  onMessage: (message: SessionMessage) => void,
): SessionChannel | undefined {
  if (typeof BroadcastChannel === "undefined") return undefined;
  const channel = new BroadcastChannel(name);
  channel.onmessage = (event: MessageEvent) => onMessage(event.data as SessionMessage);
  return {
    post: (message) => channel.postMessage(message),
    close: () => channel.close(),
  };
}
