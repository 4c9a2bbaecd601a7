import { isUtf8 } from "node:buffer";
import type { Socket } from "node:net";
import { Transform, type TransformCallback } from "node:stream";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { ApiError } from "../errors.ts";
import { newId } from "../ids.ts";

/**
 * Transport-level guards (docs/security.md): body timeouts, the JSON body
 * parser (strict UTF-8), the connection-close rule for unread bodies, and the
 * answer to requests Node's HTTP parser refuses before Fastify sees them.
 */

declare module "fastify" {
  interface FastifyContextConfig {
    /**
     * A long upload (file imports): no total time limit on the body, only the
     * pause between bytes, so a 100 MiB file over a slow link still arrives.
     */
    longUpload?: boolean;
  }
}

export interface BodyTimeouts {
  /** Longest pause between two chunks of a body. */
  idleMs: number;
  /** Longest a whole body may take (not applied to long uploads). */
  totalMs: number;
}

function bodyTimeout(kind: "idle" | "total", ms: number): ApiError {
  const seconds = Math.round(ms / 100) / 10;
  return new ApiError(
    "request_timeout",
    kind === "idle"
      ? `The request body stopped arriving: no byte for ${seconds} s.`
      : `The request body took longer than ${seconds} s to arrive.`,
    { headers: { connection: "close" } },
  );
}

/**
 * A pass-through for a request body that fails with 408 `request_timeout`
 * when the client pauses longer than `idleMs` between bytes or (unless
 * `totalMs` is undefined) takes longer than `totalMs` in all. The failure
 * reaches Fastify's body reader (or the import's upload reader) as a stream
 * error; the connection is closed after the answer.
 */
export class GuardedBody extends Transform {
  private idle: NodeJS.Timeout;
  private readonly total: NodeJS.Timeout | undefined;

  constructor(
    private readonly idleMs: number,
    totalMs: number | undefined,
  ) {
    super();
    this.idle = setTimeout(() => this.fail("idle", idleMs), idleMs);
    this.total = totalMs === undefined ? undefined : setTimeout(() => this.fail("total", totalMs), totalMs);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.idle.refresh();
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.clear();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.clear();
    callback(error);
  }

  private clear(): void {
    clearTimeout(this.idle);
    if (this.total) clearTimeout(this.total);
  }

  private fail(kind: "idle" | "total", ms: number): void {
    this.destroy(bodyTimeout(kind, ms));
  }
}

function hasBody(request: FastifyRequest): boolean {
  const length = request.headers["content-length"];
  return request.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0");
}

/** Registers the body timeouts, the JSON parser and the close-after-unread-body rule on `app`. */
export function registerTransportGuards(app: FastifyInstance, timeouts: BodyTimeouts): void {
  app.addHook("preParsing", (request, reply, payload, done) => {
    if (!hasBody(request)) {
      done(null, payload);
      return;
    }
    const total = request.routeOptions.config.longUpload ? undefined : timeouts.totalMs;
    const guarded = new GuardedBody(timeouts.idleMs, total);
    // The raw request's own failures (an aborted upload) end the guarded stream too.
    payload.on("error", (error) => guarded.destroy(error));
    // A reader that stopped early (a 413 refuses the rest of the body) no longer
    // listens: the timeout is then nobody's error, and never an uncaught one.
    guarded.on("error", () => {});
    // Once the answer is out (or the client gone), nothing more is read: stop the timers.
    const stop = () => {
      if (!guarded.destroyed) guarded.destroy();
    };
    reply.raw.once("finish", stop);
    reply.raw.once("close", stop);
    payload.pipe(guarded);
    done(null, guarded);
  });

  // A response sent before its request body was read (a 401 on an upload, a
  // 408, a 413) closes the connection: otherwise Node keeps reading, and
  // discarding, whatever the client still trickles in.
  app.addHook("onSend", (request, reply, payload, done) => {
    if (!request.raw.complete) reply.header("connection", "close");
    done(null, payload);
  });

  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(body as Buffer));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
}

/**
 * A JSON request body, strictly: UTF-8 only (an invalid byte sequence is 400
 * `invalid_json`, never stored as U+FFFD), and no lone surrogate in any string
 * (`"\ud800"` is valid JSON but no valid text: SQLite and PostgreSQL would
 * each store something different).
 */
export function parseJsonBody(body: Buffer): unknown {
  if (body.length === 0) {
    throw new ApiError("invalid_json", "The body is empty but Content-Type is application/json.");
  }
  if (!isUtf8(body)) {
    throw new ApiError("invalid_json", "The body is not valid UTF-8; JSON bodies must be encoded in UTF-8.");
  }
  const text = body.toString("utf8");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ApiError("invalid_json", "The body is not valid JSON.", { cause: error });
  }
  // Only an escape can produce a surrogate (UTF-8 cannot encode one).
  if (/\\u[dD][89a-fA-F]/.test(text) && !wellFormed(value)) {
    throw new ApiError(
      "invalid_json",
      "The body contains a lone UTF-16 surrogate escape (\\uD800–\\uDFFF without its pair), which is not text.",
    );
  }
  return value;
}

const LONE_SURROGATE = /\p{Surrogate}/u;

function wellFormed(value: unknown): boolean {
  if (typeof value === "string") return !LONE_SURROGATE.test(value);
  if (Array.isArray(value)) return value.every(wellFormed);
  if (typeof value === "object" && value !== null) {
    return Object.entries(value).every(([key, v]) => !LONE_SURROGATE.test(key) && wellFormed(v));
  }
  return true;
}

/** What a surface's error shape needs to render an error outside any request. */
export type BareErrorRenderer = (error: ApiError, requestId: string, path: string) => unknown;

/**
 * Node's `clientError`: a request its HTTP parser refused (headers over the
 * limit → 431, malformed or smuggling-shaped framing → 400, headers too slow
 * → 408). Answered in the error envelope of the surface the request line
 * names, with a request id and the security headers, then the socket is closed.
 */
export function clientErrorHandler(
  render: BareErrorRenderer,
  headers: (path: string) => Record<string, string>,
) {
  // Fastify calls it bound to the instance.
  return function (
    this: FastifyInstance,
    error: Error & { code?: string; rawPacket?: unknown },
    socket: Socket,
  ) {
    if (error.code === "ECONNRESET" || socket.destroyed) return;
    const apiError =
      error.code === "HPE_HEADER_OVERFLOW"
        ? new ApiError(
            "headers_too_large",
            "The request line and headers are larger than the server accepts (16 KiB).",
          )
        : error.code === "ERR_HTTP_REQUEST_TIMEOUT"
          ? new ApiError("request_timeout", "The request headers took too long to arrive.")
          : new ApiError("malformed_request", "The request is not valid HTTP/1.1 and cannot be read.");
    const requestId = newId("req");
    const path = requestPath(Buffer.isBuffer(error.rawPacket) ? error.rawPacket : undefined);
    this.log.info({ reqId: requestId, code: error.code, status: apiError.status }, "client error");
    const body = JSON.stringify(render(apiError, requestId, path));
    const status = apiError.status;
    const lines = [
      `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Error"}`,
      "content-type: application/json; charset=utf-8",
      `content-length: ${Buffer.byteLength(body)}`,
      `x-request-id: ${requestId}`,
      ...Object.entries(headers(path)).map(([name, value]) => `${name}: ${value}`),
      "connection: close",
    ];
    if (socket.writable) socket.write(`${lines.join("\r\n")}\r\n\r\n${body}`);
    // Ends the socket once the answer is written, then destroys it.
    socket.destroySoon();
  };
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  408: "Request Timeout",
  431: "Request Header Fields Too Large",
};

/** The path of the request line in what the parser had read, or "/" when it is unreadable. */
function requestPath(raw: Buffer | undefined): string {
  if (!raw) return "/";
  const line = raw.subarray(0, 2048).toString("latin1").split("\r\n")[0] ?? "";
  const target = line.split(" ")[1];
  return target?.startsWith("/") ? target : "/";
}
