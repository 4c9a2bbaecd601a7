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

type PinoLike = {
  child(bindings: Record<string, unknown>, options?: object): PinoLike;
  isLevelEnabled(level: string): boolean;
} & Record<string, unknown>;

const LEVEL_METHODS = ["fatal", "error", "warn", "info", "debug", "trace"] as const;
const lazyPrototypes = new WeakMap<object, object>();
const noop = () => {};

interface LazyChild {
  parent: PinoLike;
  bindings: Record<string, unknown>;
  options: object | undefined;
  real: PinoLike | undefined;
}

function realChild(self: LazyChild): PinoLike {
  self.real ??= self.parent.child(self.bindings, self.options);
  return self.real;
}

/**
 * Fastify's `childLoggerFactory`: a request's logger that becomes a real
 * pino child (bindings serialised, a new logger object) only when something
 * logs at an enabled level. Fastify makes a child per request; at `warn` a
 * get never logs, and building the child was ~3 % of its server CPU. The
 * methods of levels that are off are no-ops, like pino's.
 */
export function lazyChildLogger(
  logger: object,
  bindings: Record<string, unknown>,
  options: object | undefined,
): object {
  const parent = logger as PinoLike;
  let proto = lazyPrototypes.get(parent);
  if (!proto) {
    const methods: Record<string, unknown> = {
      child(this: LazyChild, b: Record<string, unknown>, o?: object) {
        return realChild(this).child(b, o);
      },
      bindings(this: LazyChild) {
        return { ...(this.parent.bindings as () => object)(), ...this.bindings };
      },
    };
    for (const level of LEVEL_METHODS) {
      methods[level] = function (this: LazyChild, ...args: unknown[]) {
        if (!this.parent.isLevelEnabled(level)) return noop();
        const real = realChild(this);
        return (real[level] as (...a: unknown[]) => void)(...args);
      };
    }
    const made: object = Object.assign(Object.create(parent), methods);
    lazyPrototypes.set(parent, made);
    proto = made;
  }
  const child = Object.create(proto) as LazyChild;
  child.parent = parent;
  child.bindings = bindings;
  child.options = options;
  child.real = undefined;
  return child;
}
