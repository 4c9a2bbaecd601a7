import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import http from "node:http";
import https from "node:https";
import type { LookupFunction } from "node:net";
import ipaddr from "ipaddr.js";
import { isForbiddenAddress } from "../domain/webhook-targets.ts";

/** Most of a response body read (the rest is not waited for). */
export const RESPONSE_READ_MAX = 64 * 1024;
/** Kept in the deliveries log. */
export const RESPONSE_KEEP_MAX = 1024;

export interface SendResult {
  /** The receiver's status, when it answered. */
  statusCode: number | null;
  /** Why no status (refused target, DNS, connection closed, timeout) or why a status is not success. */
  error: string | null;
  durationMs: number;
  /** First 1 KiB of the body, as text. */
  responseBody: string | null;
  /** The receiver's Retry-After, in ms, when it sent one. */
  retryAfterMs: number | null;
}

export interface SendOptions {
  timeoutMs: number;
  allowPrivate: boolean;
}

class ForbiddenTarget extends Error {}

/**
 * A DNS lookup that refuses private addresses: the check happens on the
 * address the socket then connects to, so a name that resolves to a public
 * address at creation and a private one now (DNS rebinding) is refused.
 */
const guardedLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
    if (error) return callback(error, "", 4);
    const allowed = addresses.filter((a) => !isForbiddenAddress(a.address));
    if (allowed.length === 0) {
      return callback(
        new ForbiddenTarget(`${hostname} resolves to a private, loopback or link-local address`),
        "",
        4,
      );
    }
    if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, allowed);
    callback(null, allowed[0]!.address, allowed[0]!.family);
  });
};

/** Keep-alive agents: one per (scheme, policy), shared by every delivery of a process. */
const agents = new Map<string, http.Agent>();
function agentFor(protocol: string, allowPrivate: boolean): http.Agent {
  const key = `${protocol}${allowPrivate}`;
  let agent = agents.get(key);
  if (!agent) {
    const options = {
      keepAlive: true,
      maxSockets: 64,
      ...(allowPrivate ? {} : { lookup: guardedLookup }),
    };
    agent = protocol === "https:" ? new https.Agent(options) : new http.Agent(options);
    agents.set(key, agent);
  }
  return agent;
}

export function parseRetryAfter(value: string | string[] | undefined, at: number): number | null {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined) return null;
  if (/^\d{1,9}$/.test(raw.trim())) return Number(raw.trim()) * 1000;
  const date = Date.parse(raw);
  return Number.isNaN(date) ? null : Math.max(0, date - at);
}

function text(buffer: Buffer): string {
  // PostgreSQL text cannot hold NUL.
  return buffer.subarray(0, RESPONSE_KEEP_MAX).toString("utf8").replace(/\0/g, "\uFFFD");
}

/** POSTs one signed event. Never throws: every failure is a result. Redirects are not followed. */
export function sendWebhook(
  url: string,
  headers: Record<string, string>,
  body: string,
  options: SendOptions,
): Promise<SendResult> {
  const started = Date.now();
  const result = (partial: Partial<SendResult>): SendResult => ({
    statusCode: null,
    error: null,
    responseBody: null,
    retryAfterMs: null,
    ...partial,
    durationMs: Date.now() - started,
  });
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return Promise.resolve(result({ error: "invalid url" }));
  }
  const host = target.hostname.replace(/^\[|\]$/g, "");
  if (!options.allowPrivate && ipaddr.isValid(host) && isForbiddenAddress(host)) {
    return Promise.resolve(result({ error: "target refused: a private, loopback or link-local address" }));
  }
  const client = target.protocol === "https:" ? https : http;
  return new Promise((resolve) => {
    let settled = false;
    const finish = (value: SendResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(value);
    };
    const request = client.request(
      target,
      {
        method: "POST",
        agent: agentFor(target.protocol, options.allowPrivate),
        headers: {
          ...headers,
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          "user-agent": "Phonebook-Webhooks/1",
        },
      },
      (response) => {
        const status = response.statusCode ?? 0;
        const chunks: Buffer[] = [];
        let size = 0;
        const done = (truncated: boolean) => {
          const buffer = Buffer.concat(chunks);
          const redirect = status >= 300 && status < 400;
          finish(
            result({
              statusCode: status,
              error: redirect
                ? `redirect not followed${response.headers.location ? ` (Location: ${String(response.headers.location).slice(0, 200)})` : ""}`
                : null,
              responseBody: buffer.length > 0 ? text(buffer) : null,
              retryAfterMs: parseRetryAfter(response.headers["retry-after"], Date.now()),
            }),
          );
          if (truncated) response.destroy();
        };
        response.on("data", (chunk: Buffer) => {
          if (settled) return;
          size += chunk.length;
          if (size <= RESPONSE_READ_MAX) chunks.push(chunk);
          if (size >= RESPONSE_READ_MAX) done(true);
        });
        response.on("end", () => done(false));
        response.on("error", () => done(false));
        response.on("aborted", () => done(false));
      },
    );
    const timer = setTimeout(() => {
      finish(result({ error: `timeout after ${options.timeoutMs} ms` }));
      request.destroy();
    }, options.timeoutMs);
    request.on("error", (error: Error & { code?: string }) => {
      const refused = error instanceof ForbiddenTarget;
      finish(
        result({
          error: refused
            ? `target refused: ${error.message}`
            : `${error.code ?? "error"}: ${error.message}`.slice(0, 300),
        }),
      );
    });
    request.end(body);
  });
}
