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

export function loggerOptions(
  level: LogLevel,
  stream?: NodeJS.WritableStream,
): FastifyServerOptions["logger"] {
  const base = { level, redact: { paths: REDACTED_PATHS, censor: "[redacted]" } };
  return stream ? { ...base, stream } : base;
}
