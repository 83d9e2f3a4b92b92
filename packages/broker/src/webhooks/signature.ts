import { createHmac } from "node:crypto";
import { digestsEqual } from "@evergreen/server";

/**
 * `Evergreen-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`: the timestamp is
 * signed with the body so a receiver can refuse replays older than it tolerates.
 */
export function signWebhook(secret: string, body: string, timestamp: number): string {
  const mac = createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex");
  return `t=${timestamp},v1=${mac}`;
}

/** Receiver side: true when `header` signs `body` with `secret` (constant-time compare). */
export function verifyWebhook(secret: string, body: string, header: string): boolean {
  const parts = Object.fromEntries(header.split(",").map((p) => p.split("=", 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || typeof parts.v1 !== "string") return false;
  const expected = Buffer.from(signWebhook(secret, body, t).split("v1=")[1]!, "hex");
  const given = Buffer.from(parts.v1, "hex");
  return digestsEqual(given, expected);
}
