import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { createTestStore, seedOrganization, type TestStore } from "../helpers/harness.ts";
import { type ServerProcess, startServerProcess } from "../helpers/server-process.ts";

/**
 * Slow clients against a real server process over real sockets (the server is
 * configured with short timeouts through its environment, so no test waits
 * long). Nothing here measures time: each test waits for what the server
 * does (an answer, a close) with a generous deadline.
 */

const DEADLINE_MS = 60_000;

interface Exchange {
  socket: Socket;
  /** Resolves with every byte the server sent once it closed the connection. */
  closed: Promise<string>;
}

function open(url: string): Promise<Exchange> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let received = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      received += chunk;
    });
    const closed = new Promise<string>((resolveClosed, rejectClosed) => {
      const timer = setTimeout(() => {
        socket.destroy();
        rejectClosed(new Error(`the server did not close the connection; received:\n${received}`));
      }, DEADLINE_MS);
      socket.on("close", () => {
        clearTimeout(timer);
        resolveClosed(received);
      });
    });
    // A reset after the answer is a close too.
    socket.on("error", () => {});
    socket.once("connect", () => resolve({ socket, closed }));
    socket.once("error", reject);
  });
}

function parseResponse(raw: string): { status: number; headers: Record<string, string>; body: string } {
  const end = raw.indexOf("\r\n\r\n");
  assert.ok(end > 0, `an HTTP response, got: ${JSON.stringify(raw.slice(0, 200))}`);
  const [statusLine, ...lines] = raw.slice(0, end).split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(statusLine!.split(" ")[1]), headers, body: raw.slice(end + 4) };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function assertEnvelope(response: ReturnType<typeof parseResponse>, status: number, code: string) {
  assert.equal(response.status, status, response.body);
  const body = JSON.parse(response.body);
  assert.equal(body.error.code, code);
  assert.match(body.error.request_id, /^req_/);
  assert.equal(response.headers["x-request-id"], body.error.request_id);
  assert.equal(response.headers["x-content-type-options"], "nosniff");
  assert.equal(response.headers.connection, "close");
}

describe("slow clients (real server process, real sockets)", () => {
  let testStore: TestStore;
  let server: ServerProcess;
  let capped: ServerProcess | undefined;
  let auth: string;
  let phoneNumberId: string;

  before(async () => {
    testStore = await createTestStore("sqlite");
    await testStore.store.migrate();
    const seeded = await seedOrganization(testStore.store.db, {
      name: "Slow Co",
      phoneNumberId: "300300300300",
      phoneNumber: "+628119990000",
    });
    auth = seeded.auth.authorization;
    phoneNumberId = seeded.account.phone_number_id;
    server = await startServerProcess({
      ...testStore.env,
      HTTP_BODY_IDLE_TIMEOUT_MS: "400",
      HTTP_BODY_TIMEOUT_MS: "1500",
      HTTP_HEADERS_TIMEOUT_MS: "1000",
    });
  });
  after(async () => {
    await server?.kill();
    await capped?.kill();
    await testStore?.drop();
  });

  test("a body that stops arriving is cut with 408 request_timeout and the connection closed", async () => {
    const { socket, closed } = await open(server.url);
    socket.write(
      `POST /v1/${phoneNumberId}/contacts HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\n` +
        'Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{"phone_',
    );
    assertEnvelope(parseResponse(await closed), 408, "request_timeout");
  });

  test("a body trickled byte by byte (never idle) is cut at the total limit", async () => {
    const { socket, closed } = await open(server.url);
    socket.write(
      `POST /v1/${phoneNumberId}/contacts HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\n` +
        "Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n",
    );
    let done = false;
    void closed.finally(() => {
      done = true;
    });
    // One byte at a time, well inside the idle limit, until the server gives up.
    for (let i = 0; i < 5000 && !done; i++) {
      if (!socket.destroyed) socket.write(" ");
      await sleep(50);
    }
    const response = parseResponse(await closed);
    assertEnvelope(response, 408, "request_timeout");
    assert.match(JSON.parse(response.body).error.message, /took longer than/);
  });

  test("an unauthenticated request with an unread body is answered 401 and the connection closed", async () => {
    const { socket, closed } = await open(server.url);
    socket.write(
      "POST /v1/contacts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
    );
    assertEnvelope(parseResponse(await closed), 401, "missing_api_key");
  });

  test("headers that never end get 408 in the envelope", async () => {
    const { socket, closed } = await open(server.url);
    socket.write("GET /v1/me HTTP/1.1\r\nHost: x\r\n");
    const raw = await closed;
    const response = parseResponse(raw);
    assert.equal(response.status, 408);
    assert.equal(JSON.parse(response.body).error.code, "request_timeout");
    assert.match(response.headers["x-request-id"] ?? "", /^req_/);
  });

  test("a file import outlives the total limit while its bytes keep flowing", async () => {
    const rows = Array.from({ length: 40 }, (_, i) => `+62812${String(i).padStart(7, "0")},Slow ${i}\n`);
    const file = `phone_number,name\n${rows.join("")}`;
    const { socket, closed } = await open(server.url);
    socket.write(
      `POST /v1/imports?phone_number_id=${phoneNumberId} HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\n` +
        `Content-Type: text/csv\r\nContent-Length: ${Buffer.byteLength(file)}\r\nConnection: close\r\n\r\n`,
    );
    // 40 pieces 100 ms apart: about 4 s in all, beyond the 1.5 s total limit, never idle for 400 ms.
    const pieces = [`phone_number,name\n`, ...rows];
    for (const piece of pieces) {
      socket.write(piece);
      await sleep(100);
    }
    const response = parseResponse(await closed);
    assert.equal(response.status, 202, response.body);
    assert.equal(JSON.parse(response.body).data.object, "import");
  });

  test("HTTP_MAX_CONNECTIONS: connections past the cap are refused, and served again once others close", async () => {
    capped = await startServerProcess({ ...testStore.env, HTTP_MAX_CONNECTIONS: "3" });
    const held = [await open(capped.url), await open(capped.url), await open(capped.url)];
    // Each held connection is served: the server has accepted it.
    for (const { socket } of held) socket.write("GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n");
    await Promise.all(
      held.map(
        ({ socket }) =>
          new Promise<void>((resolve) => {
            socket.once("data", () => resolve());
          }),
      ),
    );
    const refused = await open(capped.url);
    refused.socket.write("GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert.equal(await refused.closed, "", "closed without an answer");
    for (const { socket } of held) socket.end();
    await Promise.all(held.map(({ closed }) => closed));
    const res = await fetch(`${capped.url}/v1/health`, { headers: { connection: "close" } });
    assert.equal(res.status, 200);
    await res.text();
  });
});
