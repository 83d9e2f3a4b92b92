import { type Socket, connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.ts";
import { type TestIssuer, startTestIssuer } from "./harness.ts";

/** Opens a raw connection, writes `chunks`, and resolves with what the server sent once it closes. */
function stalledRequest(
  ti: TestIssuer,
  first: string,
  drip?: string,
): Promise<{ closed: boolean; data: string }> {
  const { port } = new URL(ti.url);
  return new Promise((resolve) => {
    const socket: Socket = connect(Number(port), "127.0.0.1");
    let data = "";
    let timer: NodeJS.Timeout | undefined;
    // Generous: the server must close it well within this on a loaded machine.
    const budget = setTimeout(() => {
      clearInterval(timer);
      socket.destroy();
      resolve({ closed: false, data });
    }, 20_000);
    socket.on("data", (d) => {
      data += d;
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      clearTimeout(budget);
      clearInterval(timer);
      resolve({ closed: true, data });
    });
    socket.on("connect", () => {
      socket.write(first);
      // A slow drip keeps the socket from ever being idle: only the request timeout ends it.
      if (drip) timer = setInterval(() => socket.writable && socket.write(drip), 100);
    });
  });
}

const partialBody =
  "POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n" +
  "Content-Length: 1000\r\n\r\ngrant_type=pass";

/**
 * Connections that stall (headers then part of a body, or only part of the headers) or drip
 * bytes for ever are closed by the request, headers and connection timeouts.
 */
describe("HTTP timeouts", () => {
  let ti: TestIssuer;
  beforeAll(async () => {
    ti = await startTestIssuer({
      env: {
        EVERGREEN_REQUEST_TIMEOUT: "1",
        EVERGREEN_HEADERS_TIMEOUT: "1",
        // long: the request and headers timeouts, not idleness, must be what closes them
        EVERGREEN_CONNECTION_TIMEOUT: "120",
      },
    });
  });
  afterAll(() => ti?.close());

  it("headers and a partial body, then nothing: the server answers 408 and closes the connection", async () => {
    const { closed, data } = await stalledRequest(ti, partialBody);
    expect(closed).toBe(true);
    expect(data).toMatch(/^HTTP\/1\.1 408/);
  });

  it("a body dripping a byte at a time is closed too (the request timeout counts from the first byte)", async () => {
    const { closed } = await stalledRequest(ti, partialBody, "s");
    expect(closed).toBe(true);
  });

  it("headers that never end are closed", async () => {
    const { closed } = await stalledRequest(ti, "POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\n", "X-a: b\r\n");
    expect(closed).toBe(true);
  });

  it("normal requests are unaffected", async () => {
    const res = await fetch(`${ti.url}/healthz`);
    expect(res.status).toBe(200);
  });
});

describe("HTTP timeouts: idle connections", () => {
  let ti: TestIssuer;
  beforeAll(async () => {
    ti = await startTestIssuer({
      env: {
        EVERGREEN_REQUEST_TIMEOUT: "0",
        EVERGREEN_HEADERS_TIMEOUT: "0",
        EVERGREEN_CONNECTION_TIMEOUT: "1",
      },
    });
  });
  afterAll(() => ti?.close());

  it("a connection with nothing happening is closed after the connection timeout", async () => {
    const { closed } = await stalledRequest(ti, partialBody);
    expect(closed).toBe(true);
  });
});

describe("HTTP timeout configuration", () => {
  it("has bounded defaults and reads seconds from the environment", () => {
    expect(loadConfig({}).timeouts).toEqual({
      request: 30_000,
      connection: 60_000,
      headers: 10_000,
      keepAlive: 5_000,
    });
    expect(
      loadConfig({
        EVERGREEN_REQUEST_TIMEOUT: "20",
        EVERGREEN_CONNECTION_TIMEOUT: "90",
        EVERGREEN_HEADERS_TIMEOUT: "5",
        EVERGREEN_KEEP_ALIVE_TIMEOUT: "2.5",
      }).timeouts,
    ).toEqual({ request: 20_000, connection: 90_000, headers: 5_000, keepAlive: 2_500 });
  });
});
