import { type Static, type TObject, type TSchema, type TStringOptions, type TUnsafe, Type } from "typebox";
import { PHONE_NUMBER_ID_PATTERN } from "../domain/accounts.ts";
import { METADATA_DESCRIPTION } from "../domain/contact-fields.ts";
import { ERROR_CODES } from "../errors.ts";
import { type IdPrefix, idPattern } from "../ids.ts";

/** Shared TypeBox schemas: route schema = validation = types = OpenAPI. */

/** Free text stored as given: no control characters (PostgreSQL cannot store NUL in text; logs and terminals mangle the rest). */
export const NO_CONTROL_CHARACTERS = "^[^\\u0000-\\u001f\\u007f]*$";

export const Timestamp = Type.String({ format: "date-time", description: "ISO 8601 UTC with milliseconds" });
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

/** Pagination query parameters shared by every list. `limit` is validated by the pagination module. */
export const PageQuery = {
  limit: Type.Optional(Type.String({ description: "1–100, default 25" })),
  cursor: Type.Optional(Type.String({ description: "next_cursor of the previous page, verbatim" })),
};
