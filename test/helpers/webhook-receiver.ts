import { createHmac, timingSafeEqual } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";

export interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  // biome-ignore lint/suspicious/noExplicitAny: parsed webhook payloads are read loosely
  json: any;
}

/** What the receiver does with one request: answer, or misbehave. */
export type Behaviour =
  | { status: number; headers?: Record<string, string>; body?: string }
  | { close: true }
  | { delayMs: number; status: number };

/**
 * A real HTTP receiver on 127.0.0.1 for tests. `respond` decides each answer
 * (default 200); every request is recorded; `received` holds the ones answered 2xx.
 */
export class Receiver {
  readonly requests: Received[] = [];
  readonly received: Received[] = [];
  respond: (request: Received, index: number) => Behaviour = () => ({ status: 200 });
  private readonly server: http.Server;
  private readonly waiters = new Set<() => void>();
  private readonly sockets = new Set<import("node:net").Socket>();
  url = "";

  constructor() {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        let json: unknown;
        try {
          json = JSON.parse(body);
        } catch {
          json = undefined;
        }
        const request: Received = { path: req.url ?? "/", headers: req.headers, body, json };
        const index = this.requests.length;
        this.requests.push(request);
        const behaviour = this.respond(request, index);
        const answer = (status: number, headers: Record<string, string> = {}, text = "ok") => {
          if (status >= 200 && status < 300) this.received.push(request);
          res.writeHead(status, headers).end(text);
          this.notify();
        };
        if ("close" in behaviour) {
          req.socket.destroy();
          this.notify();
        } else if ("delayMs" in behaviour) {
          const timer = setTimeout(() => answer(behaviour.status), behaviour.delayMs);
          res.on("close", () => clearTimeout(timer));
          this.notify();
        } else {
          answer(behaviour.status, behaviour.headers, behaviour.body);
        }
      });
    });
    this.server.on("connection", (socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
  }

  async start(port = 0): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(port, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Resolves when `predicate` holds (checked after every request), or rejects after a generous deadline. */
  waitFor(predicate: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!predicate()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`receiver: timed out waiting for ${what} (${this.requests.length} requests)`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
    });
  }

  /** Successfully received events of a type. */
  // biome-ignore lint/suspicious/noExplicitAny: parsed webhook payloads are read loosely
  events(type?: string): any[] {
    return this.received.map((r) => r.json).filter((e) => type === undefined || e.type === type);
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Verifies a request with the standardwebhooks package (throws when it does not verify). */
export function verifyStandard(secret: string, request: Received): unknown {
  return new Webhook(secret).verify(request.body, request.headers as Record<string, string>);
}

/** Verifies Phonebook-Signature by hand: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>"> with the decoded secret. */
export function verifyPhonebook(secret: string, request: Received): boolean {
  const header = String(request.headers["phonebook-signature"] ?? "");
  const parts = header.split(",");
  const t = parts.find((p) => p.startsWith("t="))?.slice(2);
  if (!t) return false;
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  const expected = createHmac("sha256", key).update(`${t}.${request.body}`).digest();
  return parts
    .filter((p) => p.startsWith("v1="))
    .some((p) => {
      const given = Buffer.from(p.slice(3), "hex");
      return given.length === expected.length && timingSafeEqual(given, expected);
    });
}
