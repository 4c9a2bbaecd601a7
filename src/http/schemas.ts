import { type Static, type TObject, type TSchema, type TStringOptions, type TUnsafe, Type } from "typebox";
import { PHONE_NUMBER_ID_PATTERN } from "../domain/accounts.ts";
import { METADATA_DESCRIPTION } from "../domain/contact-fields.ts";
import { DEFAULT_LIMIT, MAX_LIMIT } from "../domain/pagination.ts";
import { ERROR_CODES } from "../errors.ts";
import { type IdPrefix, idPattern } from "../ids.ts";

/** Shared TypeBox schemas: route schema = validation = types = OpenAPI. */

/** Free text stored as given: no control characters (PostgreSQL cannot store NUL in text; logs and terminals mangle the rest). */
export const NO_CONTROL_CHARACTERS = "^[^\\u0000-\\u001f\\u007f]*$";

export const Timestamp = Type.String({ format: "date-time", description: "ISO 8601 UTC with milliseconds" });

/** What `instantFormat` needs of the validator (Ajv). */
interface FormatRegistry {
  readonly formats: { [name: string]: unknown };
  addFormat(name: string, format: { type: "string"; validate: (value: string) => boolean }): unknown;
}

/**
 * The one check of an instant on input (`format: "date-time"`, as
 * `Timestamp` declares it, in query filters and bodies alike): an RFC 3339
 * date-time with a time zone, as Ajv's formats check it (calendar included),
 * that JavaScript's Date reads too (not a leap second, not a bare `+07`
 * offset). Installed on the validator by `buildApp`; a value that passed it is
 * read with `instantOf`, which cannot fail.
 */
export function instantFormat(ajv: FormatRegistry): void {
  const rfc3339 = ajv.formats["date-time"];
  const validate =
    typeof rfc3339 === "object" &&
    rfc3339 !== null &&
    "validate" in rfc3339 &&
    typeof rfc3339.validate === "function"
      ? (rfc3339.validate as (value: string) => boolean)
      : () => true;
  ajv.addFormat("date-time", {
    type: "string",
    validate: (value) => validate(value) && Number.isFinite(Date.parse(value)),
  });
}

/** An instant the route's schema checked (`format: "date-time"`), in milliseconds. */
export function instantOf(value: string): number {
  return Date.parse(value);
}
export const NullableString = (options: TStringOptions = {}) =>
  Type.Union([Type.String(options), Type.Null()]);

/** Meta's id of an account's number (path, query or body); a malformed one is 400 `invalid_field_value`. */
export const PhoneNumberId = (description = "Meta phone_number_id of one of your accounts") =>
  Type.String({ pattern: PHONE_NUMBER_ID_PATTERN, description });

/**
 * A contact's metadata on input: an object (nested within limits), or null (which clears it). Its
 * finer rules are the domain's (`validateMetadata`); a wrong type here is 400
 * `invalid_metadata` like theirs.
 */
export const MetadataInput = Type.Union(
  [
    Type.Unsafe<Record<string, unknown>>({
      type: "object",
      "x-error-code": "invalid_metadata",
      description: METADATA_DESCRIPTION,
    }),
    Type.Null(),
  ],
  { "x-error-code": "invalid_metadata" },
);

/** A path/body id of one prefix; a malformed one is 400 `invalid_field_value`. */
export const Id = (prefix: IdPrefix, description?: string) =>
  Type.String({ pattern: idPattern(prefix), ...(description ? { description } : {}) });

export const ErrorBody = Type.Object(
  {
    error: Type.Object(
      {
        type: Type.String(),
        code: Type.Union(ERROR_CODES.map((code) => Type.Literal(code))),
        message: Type.String(),
        param: Type.Optional(Type.String()),
        request_id: Type.String(),
        existing_id: Type.Optional(Type.String()),
      },
      { additionalProperties: true },
    ),
  },
  { $id: "ErrorEnvelope", title: "Error envelope" },
);

/**
 * A success body that carries `request_id`. The schema (serialization,
 * OpenAPI) has it; the handler's type does not: the id is added once, for
 * every route whose schema declares it, by `http/request-id.ts`.
 */
export function WithRequestId<T extends TObject>(body: T): TUnsafe<Static<T>> {
  const { type: _type, properties, required: _required, ...options } = body;
  return Type.Unsafe<Static<T>>(Type.Object({ ...properties, request_id: Type.String() }, options));
}

/** Annotation on a schema the validator accepts anything for: what OpenAPI shows in its place. */
const SHOWN_AS = "x-shown-as";

/**
 * A value the route's validation accepts whatever it is, because the handler
 * checks it itself, while OpenAPI shows `shown` in its place (`withShownSchemas`).
 * For batch items: each is checked on its own (with `shown` compiled once), so
 * that one bad item is an error result rather than a 400 for the whole batch.
 */
export function CheckedByHandler<T extends TSchema>(shown: T): TUnsafe<unknown> {
  return Type.Unsafe<unknown>({ [SHOWN_AS]: shown });
}

/** The generated OpenAPI document with every `CheckedByHandler` node replaced by the schema it shows. */
export function withShownSchemas<T>(document: T): T {
  const replace = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(replace);
    if (typeof node !== "object" || node === null) return node;
    if (SHOWN_AS in node) return replace(Reflect.get(node, SHOWN_AS));
    return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, replace(value)]));
  };
  return replace(document) as T;
}

/** `{ data, request_id }` */
export function DataEnvelope<T extends TSchema>(data: T) {
  return WithRequestId(Type.Object({ data }));
}

/** `{ data: [...], has_more, next_cursor }`: a page, before its envelope. */
export function ListPage<T extends TSchema>(item: T) {
  return Type.Object({
    data: Type.Array(item),
    has_more: Type.Boolean(),
    next_cursor: Type.Union([Type.String(), Type.Null()]),
  });
}

/** `{ data: [...], has_more, next_cursor, request_id }` */
export function ListEnvelope<T extends TSchema>(item: T) {
  return WithRequestId(ListPage(item));
}

/** Error responses every authenticated native route can give, for serialization and OpenAPI. */
export const NATIVE_ERROR_RESPONSES = {
  400: ErrorBody,
  401: ErrorBody,
  404: ErrorBody,
  405: ErrorBody,
  409: ErrorBody,
  413: ErrorBody,
  415: ErrorBody,
  422: ErrorBody,
  429: ErrorBody,
  500: ErrorBody,
  503: ErrorBody,
} as const;

/**
 * A page size in a query string: a whole number from 1 to `max` (digits only,
 * read as a number before validation: http/query.ts); anything else is 400
 * `invalid_limit` naming the parameter.
 */
export const Limit = (
  max = MAX_LIMIT,
  fallback = DEFAULT_LIMIT,
  description = `1–${max}, default ${fallback}`,
) =>
  Type.Integer({
    minimum: 1,
    maximum: max,
    description,
    "x-error-code": "invalid_limit",
    "x-error-message": `must be a whole number from 1 to ${max}`,
  });

/** A boolean in a query string: `true` or `false` (read as a boolean before validation: http/query.ts). */
export const QueryBoolean = (description?: string) =>
  Type.Boolean({ "x-error-message": "must be true or false", ...(description ? { description } : {}) });

/** Pagination query parameters shared by every list. */
export const PageQuery = {
  limit: Type.Optional(Limit()),
  cursor: Type.Optional(Type.String({ description: "next_cursor of the previous page, verbatim" })),
};
