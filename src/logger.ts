import type { FastifyServerOptions } from "fastify";
import type { LogLevel } from "./config.ts";

/**
 * Pino options. Headers that carry credentials are redacted wherever they
 * appear; request logs never include bodies, so keys in bodies never reach a log.
 */
export const REDACTED_PATHS = [
  "req.headers.authorization",
  'req.headers["x-api-key"]',
  'req.headers["x-hub-signature-256"]',
  "headers.authorization",
  'headers["x-api-key"]',
  "key",
  "*.key",
  "secret",
  "*.secret",
];

/**
 * Query parameters whose values are logged as sent; every other value is
 * replaced by `[redacted]`. Queries carry what people search for (names,
 * phones, emails) and cursors that encode those filters: such values are
 * personal data and stay out of the logs, while the parameter names still
 * show what was asked.
 */
const LOGGED_QUERY_VALUES = new Set(["limit", "mode", "format", "phone_number_id", "hub.mode"]);

/** The request URL as logged: the path, and the query with personal values redacted. */
export function loggedUrl(url: string): string {
  const at = url.indexOf("?");
  if (at === -1) return url;
  const parts = url
    .slice(at + 1)
    .split("&")
    .map((pair) => {
      const eq = pair.indexOf("=");
      if (eq === -1) return pair;
      let name = pair.slice(0, eq);
      try {
        name = decodeURIComponent(name.replaceAll("+", " "));
      } catch {
        // An undecodable name is judged as sent (and so redacted below).
      }
      return LOGGED_QUERY_VALUES.has(name) ? pair : `${pair.slice(0, eq)}=[redacted]`;
    });
  return `${url.slice(0, at)}?${parts.join("&")}`;
}

/** Fastify's request serializer, with the query's values redacted (see loggedUrl). */
function serializeRequest(request: {
  method: string;
  url: string;
  host?: string;
  ip?: string;
  socket?: { remotePort?: number | undefined } | null;
}) {
  return {
    method: request.method,
    url: loggedUrl(request.url),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  };
}

export function loggerOptions(
  level: LogLevel,
  stream?: NodeJS.WritableStream,
): FastifyServerOptions["logger"] {
  const base = {
    level,
    redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
    serializers: { req: serializeRequest },
  };
  return stream ? { ...base, stream } : base;
}
