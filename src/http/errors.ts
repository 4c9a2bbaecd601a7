import type { FastifyError } from "fastify";
import { PHONE_NUMBER_ID_PATTERN } from "../domain/accounts.ts";
import { ApiError, type ErrorCode } from "../errors.ts";
import { type IdPrefix, idPattern } from "../ids.ts";
import { isStoreUnavailable, isUnstorableText } from "../store/driver-errors.ts";

interface AjvError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
  parentSchema?: Record<string, unknown>;
}

const PART_NAMES: Record<string, string> = {
  body: "body",
  querystring: "query parameter",
  params: "path parameter",
  headers: "header",
};

function pathToParam(instancePath: string): string {
  return instancePath.replace(/^\//, "").split("/").join(".");
}

/** What each id prefix names, for messages in words (spec §1). */
const ID_WORDS: Record<IdPrefix, string> = {
  org: "an organisation id",
  key: "an API key id",
  wba: "an account id",
  ctc: "a contact id",
  lbl: "a label id",
  req: "a request id",
  evt: "an event id",
  imp: "an import id",
  whs: "a webhook endpoint id",
  whd: "a webhook delivery id",
  idh: "an identity change id",
  mrg: "a merge id",
};

/** A sample of the 26 ULID characters after the prefix. */
const ULID_SAMPLE = "01J0M3Z9X8W7V6T5S4R3Q2P1N0";

/**
 * The known patterns in words: a user reads "must be a contact id such as
 * ctc_01J…", never the regular expression.
 */
const PATTERN_WORDS = new Map<string, string>([
  ...(Object.entries(ID_WORDS) as [IdPrefix, string][]).map(
    ([prefix, words]) =>
      [
        idPattern(prefix),
        `must be ${words}: "${prefix}_" followed by 26 letters and digits, such as ${prefix}_${ULID_SAMPLE}`,
      ] as [string, string],
  ),
  [
    PHONE_NUMBER_ID_PATTERN,
    "must be a Meta phone_number_id: 6 to 20 digits, such as 106540352242922 (see GET /v1/accounts)",
  ],
]);

/** Ajv's message, or the words for a known pattern. */
function messageOf(error: AjvError): string {
  if (error.keyword === "pattern") {
    const words = PATTERN_WORDS.get(String(error.params.pattern));
    if (words) return words;
  }
  return error.message ?? "is not valid";
}

/** Schema validation failures → one coded error with `param`. */
function fromValidation(errors: AjvError[], context: string): ApiError {
  const first = errors[0];
  if (!first) return new ApiError("invalid_field_value", "The request is not valid.");
  const base = pathToParam(first.instancePath);
  const join = (name: string) => (base ? `${base}.${name}` : name);
  if (first.keyword === "additionalProperties") {
    const name = join(String(first.params.additionalProperty));
    if (context === "body") {
      return new ApiError("unknown_field", `Unknown field: ${name}.`, { param: name });
    }
    return new ApiError("invalid_field_value", `Unknown ${PART_NAMES[context] ?? context}: ${name}.`, {
      param: name,
    });
  }
  if (first.keyword === "required") {
    const name = join(String(first.params.missingProperty));
    return new ApiError("missing_required_field", `${name} is required.`, { param: name });
  }
  // A failure inside a union reports each branch first; the code (and the words) may be
  // declared on any schema at that path.
  const declaredAt = (keyword: string) =>
    errors
      .filter((e) => e.instancePath === first.instancePath)
      .map((e) => e.parentSchema?.[keyword])
      .find((value) => typeof value === "string");
  const declared = declaredAt("x-error-code");
  const code = (typeof declared === "string" ? declared : "invalid_field_value") as ErrorCode;
  const words = declaredAt("x-error-message");
  const param = base || undefined;
  const subject = param ?? (context === "body" ? "The request body" : "The request");
  return new ApiError(
    code,
    `${subject} ${typeof words === "string" ? words : messageOf(first)}.`,
    param ? { param } : {},
  );
}

const FASTIFY_CODES: Record<string, { code: ErrorCode; message: string }> = {
  FST_ERR_CTP_INVALID_JSON_BODY: { code: "invalid_json", message: "The body is not valid JSON." },
  FST_ERR_CTP_EMPTY_JSON_BODY: {
    code: "invalid_json",
    message: "The body is empty but Content-Type is application/json.",
  },
  FST_ERR_CTP_BODY_TOO_LARGE: {
    code: "payload_too_large",
    message: "The body is larger than this route accepts.",
  },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    code: "unsupported_media_type",
    message: "Unsupported Content-Type; send application/json.",
  },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    code: "invalid_field_value",
    message: "Content-Length does not match the body.",
  },
  FST_ERR_BAD_URL: {
    code: "invalid_field_value",
    message: "The URL is not valid: a path segment is not decodable percent-encoding.",
  },
  FST_ERR_MAX_PARAM_LENGTH: {
    code: "invalid_field_value",
    message: "A path segment is longer than 500 characters.",
  },
  FST_ERR_CTP_INVALID_TYPE: { code: "unsupported_media_type", message: "Content-Type is not valid." },
};

/**
 * Turns anything thrown during a request into an ApiError. Unknown failures
 * become 500 `internal_error` (the original is kept as `cause` for the log).
 */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  const fe = error as Partial<FastifyError> & { validation?: AjvError[]; validationContext?: string };
  if (fe && Array.isArray(fe.validation)) {
    return fromValidation(fe.validation, fe.validationContext ?? "body");
  }
  if (fe && typeof fe.code === "string" && FASTIFY_CODES[fe.code]) {
    const known = FASTIFY_CODES[fe.code]!;
    return new ApiError(known.code, known.message, { cause: error });
  }
  if (error instanceof SyntaxError && (fe.statusCode === 400 || /JSON/.test(error.message))) {
    return new ApiError("invalid_json", "The body is not valid JSON.", { cause: error });
  }
  // Any other client error Fastify reports itself (4xx) is the client's, never a 500.
  if (
    fe &&
    typeof fe.statusCode === "number" &&
    fe.statusCode >= 400 &&
    fe.statusCode < 500 &&
    typeof fe.code === "string" &&
    fe.code.startsWith("FST_")
  ) {
    return new ApiError("invalid_field_value", "The request is not valid.", { cause: error });
  }
  if (isUnstorableText(error)) {
    return new ApiError(
      "invalid_field_value",
      "The request contains characters that cannot be stored (e.g. NUL).",
      {
        cause: error,
      },
    );
  }
  if (isStoreUnavailable(error)) {
    return new ApiError("service_unavailable", "The store is unavailable; try again shortly.", {
      cause: error,
    });
  }
  return new ApiError("internal_error", "Something went wrong on our side.", { cause: error });
}
