import { ERROR_CATALOGUE, ERROR_CODES, type ErrorCode } from "../../src/errors.ts";

/**
 * The error shape each surface promises, recognised by URL prefix (longest
 * first), so a checker written today accepts the surfaces merged later:
 * - `/platform/` (Kapso Platform API): `{ "error": "<message>", code? }`, or the
 *   legacy offset-pagination 400 `{ "message": "...", ... }` of spec §4;
 * - `/meta/whatsapp/` (Graph): `{ "error": { message, type, code: <int>, fbtrace_id } }`;
 * - everything else (`/v1`, `/admin`, unknown paths): the native envelope of
 *   spec §2 with a catalogued `code` whose status is the response's status and
 *   `request_id` equal to `X-Request-Id`.
 * Each checker returns a description of what is wrong, or undefined.
 */
type Checker = (status: number, headers: Record<string, unknown>, body: unknown) => string | undefined;

const CODES = new Set<string>(ERROR_CODES);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const checkNative: Checker = (status, headers, body) => {
  if (!isObject(body) || !isObject(body.error)) return "not a native error envelope { error: {…} }";
  const { type, code, message, request_id: requestId } = body.error;
  if (typeof code !== "string" || !CODES.has(code)) return `code ${JSON.stringify(code)} is not catalogued`;
  const entry = ERROR_CATALOGUE[code as ErrorCode];
  if (entry.status !== status) return `code ${code} is catalogued as ${entry.status}, sent as ${status}`;
  if (type !== entry.type) return `type ${JSON.stringify(type)} is not ${entry.type} for ${code}`;
  if (typeof message !== "string" || message === "") return "message missing";
  if (typeof requestId !== "string" || !/^req_[0-9A-HJKMNP-TV-Z]{26}$/.test(requestId))
    return "request_id missing or malformed";
  if (headers["x-request-id"] !== requestId) return "X-Request-Id differs from request_id";
  return undefined;
};

const checkPlatform: Checker = (_status, _headers, body) => {
  if (!isObject(body)) return "not a JSON object";
  if (typeof body.error === "string" && body.error !== "") {
    if (body.code !== undefined && typeof body.code !== "string" && typeof body.code !== "number")
      return "code is neither a string nor a number";
    return undefined;
  }
  if (typeof body.message === "string" && body.message !== "") return undefined;
  return "not a platform error { error: string }";
};

const checkGraph: Checker = (_status, _headers, body) => {
  if (!isObject(body) || !isObject(body.error)) return "not a Graph error { error: {…} }";
  const { message, type, code, fbtrace_id: trace } = body.error;
  if (typeof message !== "string" || message === "") return "error.message missing";
  if (typeof type !== "string" || type === "") return "error.type missing";
  if (typeof code !== "number" || !Number.isInteger(code)) return "error.code is not an integer";
  if (typeof trace !== "string" || trace === "") return "error.fbtrace_id missing";
  return undefined;
};

const SURFACES: Array<{ prefix: string; name: string; check: Checker }> = [
  { prefix: "/meta/whatsapp/", name: "graph", check: checkGraph },
  { prefix: "/platform/", name: "platform", check: checkPlatform },
];

export function surfaceOf(url: string): string {
  return SURFACES.find((s) => url.startsWith(s.prefix))?.name ?? "native";
}

/** What is wrong with an error response of `url` (undefined when it has its surface's shape). */
export function errorShapeProblem(
  url: string,
  status: number,
  headers: Record<string, unknown>,
  text: string,
): string | undefined {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return `body is not JSON: ${text.slice(0, 200)}`;
  }
  const check = SURFACES.find((s) => url.startsWith(s.prefix))?.check ?? checkNative;
  return check(status, headers, body);
}

/** The stable code of an error response, whatever its surface (string or Graph integer). */
export function errorCodeOf(text: string): string | number | undefined {
  try {
    const body = JSON.parse(text) as { error?: unknown; code?: unknown; message?: unknown };
    if (isObject(body.error)) return body.error.code as string | number | undefined;
    if (typeof body.code === "string") return body.code;
    return typeof body.error === "string" ? body.error : (body.message as string | undefined);
  } catch {
    return undefined;
  }
}
