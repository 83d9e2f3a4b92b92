/**
 * A local webhook endpoint (node:http on 127.0.0.1) that records every delivery and checks
 * its `Evergreen-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` over `${t}.${raw body}`.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface Delivery {
  receivedAt: number;
  headers: Record<string, string | string[] | undefined>;
  raw: string;
  body: any;
}

/** Whether `header` is a valid signature of `raw` with `secret` (any v1 entry may match). */
export function verifySignature(header: string | undefined, raw: string, secret: string): boolean {
  if (!header) return false;
  const parts = header.split(",").map((p) => p.trim());
  const t = parts.find((p) => p.startsWith("t="))?.slice(2);
  const sigs = parts.filter((p) => p.startsWith("v1=")).map((p) => p.slice(3));
  if (!t || sigs.length === 0) return false;
  const expected = createHmac("sha256", secret).update(`${t}.${raw}`).digest();
  return sigs.some((s) => {
    const got = Buffer.from(s, "hex");
    return got.length === expected.length && timingSafeEqual(got, expected);
  });
}

export class WebhookReceiver {
  readonly deliveries: Delivery[] = [];
  url = "";
  /** answer status for the next deliveries (to exercise retries) */
  status = 200;
  private server: Server | undefined;

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const raw = Buffer.concat(chunks).toString("utf8");
        let body: any;
        try {
          body = JSON.parse(raw);
        } catch {
          body = undefined;
        }
        this.deliveries.push({ receivedAt: Date.now(), headers: req.headers, raw, body });
        res.writeHead(this.status).end();
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks`;
    return this;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
