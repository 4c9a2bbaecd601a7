import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { Compile } from "typebox/compile";
import {
  BATCH_MAX,
  type BatchItem,
  type BatchResult,
  countResults,
  writeContactBatch,
} from "../../domain/contact-batch.ts";
import { getContact, metadataChange, resolveAccount } from "../../domain/contacts.ts";
import { BULK_LABEL_MAX, bulkLabel, setContactLabel } from "../../domain/labels.ts";
import { ApiError } from "../../errors.ts";
import { scopeOf } from "../auth.ts";
import {
  CheckedByHandler,
  DataEnvelope,
  Id,
  MetadataInput,
  NATIVE_ERROR_RESPONSES,
  WithRequestId,
} from "../schemas.ts";
import { runWrite } from "../write-transaction.ts";
import { ContactSchema, contactOut } from "./representation.ts";
import { contactIdInUuidForm, FromAccount, PATH_STYLES, pathAccountOf } from "./scope.ts";
import { NATIVE_FIELDS } from "./wire.ts";

/**
 * One batch item: create's fields. Only their types are checked here; their
 * values are the domain's to check, as for create (and with the same errors).
 * Shown in OpenAPI; the route's own validation lets items through
 * (`CheckedByHandler`), so that a badly typed item is an error result rather
 * than a 400 for the whole batch.
 */
const BatchContact = Type.Object(
  {
    phone_number: Type.Optional(Type.String()),
    business_scoped_user_id: Type.Optional(Type.String()),
    name: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    email: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    metadata: Type.Optional(MetadataInput),
    labels: Type.Optional(Type.Array(Id("lbl"), { maxItems: 100 })),
  },
  { additionalProperties: false, title: "Batch contact" },
);

/** Compiled once; a whole item first, then (for its error) field by field in this order. */
const itemCheck = Compile(BatchContact);
const FIELD_CHECKS = (
  [
    ["phone_number", "invalid_field_value", "phone_number must be a string."],
    ["business_scoped_user_id", "invalid_field_value", "business_scoped_user_id must be a string."],
    ["name", "invalid_field_value", "name must be a string or null."],
    ["email", "invalid_field_value", "email must be a string or null."],
    ["metadata", "invalid_metadata", "metadata must be a JSON object or null."],
    ["labels", "invalid_field_value", "labels must be an array of at most 100 label ids (lbl_…)."],
  ] as const
).map(([field, code, message]) => ({
  field,
  check: Compile(BatchContact.properties[field]),
  code,
  message,
}));

/** Why an item is not a batch contact: the first unknown field, else the first field of a wrong type. */
function itemError(raw: unknown): ApiError {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return new ApiError("invalid_field_value", "Each contact must be a JSON object.");
  }
  const unknown = Object.keys(raw).find((key) => !Object.hasOwn(BatchContact.properties, key));
  if (unknown !== undefined)
    return new ApiError("unknown_field", `Unknown field: ${unknown}.`, { param: unknown });
  for (const { field, check, code, message } of FIELD_CHECKS) {
    const value: unknown = Reflect.get(raw, field);
    if (value !== undefined && !check.Check(value)) return new ApiError(code, message, { param: field });
  }
  return new ApiError("invalid_field_value", "Each contact must be a JSON object.");
}

/**
 * One batch item, checked on its own so that a badly typed item is an error
 * result rather than a 400 for the whole batch.
 */
export function batchItemOf(raw: unknown): BatchItem {
  if (!itemCheck.Check(raw)) return { error: itemError(raw) };
  return {
    input: {
      phone_number: raw.phone_number,
      business_scoped_user_id: raw.business_scoped_user_id,
      display_name: raw.name,
      email: raw.email,
      ...metadataChange(raw.metadata),
      label_ids: raw.labels,
    },
  };
}

/** A batch result on the wire. */
export function batchResultOut(result: BatchResult, index: number) {
  const error = result.error?.named(NATIVE_FIELDS);
  return {
    index,
    status: result.status,
    ...(result.id === undefined ? {} : { id: result.id }),
    ...(error
      ? {
          error: {
            code: error.code,
            message: error.message,
            ...(error.param === undefined ? {} : { param: error.param }),
            ...error.extra,
          },
        }
      : {}),
  };
}

const BatchResultSchema = Type.Object({
  index: Type.Integer(),
  status: Type.Union([
    Type.Literal("created"),
    Type.Literal("updated"),
    Type.Literal("unchanged"),
    Type.Literal("error"),
  ]),
  id: Type.Optional(Type.String()),
  error: Type.Optional(
    Type.Object(
      {
        code: Type.String(),
        message: Type.String(),
        param: Type.Optional(Type.String()),
        existing_id: Type.Optional(Type.String()),
      },
      { additionalProperties: true },
    ),
  ),
});

/**
 * Batch create/upsert, bulk_label and attach/detach, in both path styles:
 * org-level (`/contacts/…`) and account-scoped (`/:phone_number_id/contacts/…`).
 */
export const contactBatchRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.addHook("preValidation", contactIdInUuidForm);
  const tags = ["contacts"];
  for (const style of PATH_STYLES) {
    const { base, suffix } = style;

    app.post(
      `${base}/batch`,
      {
        schema: {
          tags,
          summary: `Create or upsert up to ${BATCH_MAX} contacts${suffix}`,
          description:
            "mode create (default) or upsert. One result per input, in input order; one bad item never fails the others. Items with the same identity inside one batch resolve like upsert.",
          params: style.params(),
          body: Type.Object(
            {
              mode: Type.Optional(Type.Union([Type.Literal("create"), Type.Literal("upsert")])),
              contacts: Type.Array(CheckedByHandler(BatchContact), {
                minItems: 1,
                maxItems: BATCH_MAX,
                description: "Items shaped like the body of create",
              }),
              ...style.orgLevelOnly({ from: FromAccount }),
            },
            { additionalProperties: false },
          ),
          response: {
            200: WithRequestId(
              Type.Object({
                data: Type.Array(BatchResultSchema),
                summary: Type.Object({
                  created: Type.Integer(),
                  updated: Type.Integer(),
                  unchanged: Type.Integer(),
                  failed: Type.Integer(),
                }),
              }),
            ),
            ...NATIVE_ERROR_RESPONSES,
          },
        },
      },
      async (request, reply) => {
        const body = request.body;
        const items = body.contacts.map(batchItemOf);
        return runWrite(request, reply, async (tx) => {
          const scope = scopeOf(request, tx);
          const account =
            (await pathAccountOf(scope, request.params.phone_number_id)) ??
            (await resolveAccount(scope, body.from));
          const results = await writeContactBatch(scope, account, items, {
            mode: body.mode ?? "create",
            source: "api",
          });
          return {
            status: 200,
            body: {
              data: results.map(batchResultOut),
              summary: countResults(results),
            },
          };
        });
      },
    );

    app.post(
      `${base}/bulk_label`,
      {
        schema: {
          tags,
          summary: `Attach or detach one label on up to ${BULK_LABEL_MAX} contacts${suffix}`,
          description:
            "One transaction. applied counts contacts whose labels changed, skipped the others (already so, or not found; not_found lists the latter).",
          params: style.params(),
          body: Type.Object(
            {
              contact_ids: Type.Array(Id("ctc"), { minItems: 1, maxItems: BULK_LABEL_MAX }),
              label_id: Id("lbl"),
              operation: Type.Union([Type.Literal("attach"), Type.Literal("detach")]),
            },
            { additionalProperties: false },
          ),
          response: {
            200: DataEnvelope(
              Type.Object({
                object: Type.Literal("bulk_label_result"),
                operation: Type.String(),
                label_id: Type.String(),
                applied: Type.Integer(),
                skipped: Type.Integer(),
                not_found: Type.Array(Type.String()),
              }),
            ),
            ...NATIVE_ERROR_RESPONSES,
          },
        },
      },
      async (request, reply) => {
        const body = request.body;
        return runWrite(request, reply, async (tx) => {
          const scope = scopeOf(request, tx);
          const account = await pathAccountOf(scope, request.params.phone_number_id);
          const result = await bulkLabel(scope, body, account?.id);
          return {
            status: 200,
            body: {
              data: {
                object: "bulk_label_result" as const,
                operation: body.operation,
                label_id: body.label_id,
                ...result,
              },
            },
          };
        });
      },
    );

    app.post(
      `${base}/:id/labels`,
      {
        schema: {
          tags,
          summary: `Attach a label to a contact${suffix}`,
          description: "Attaching a label the contact already carries is a no-op.",
          params: style.params({ id: Id("ctc") }),
          body: Type.Object({ label_id: Id("lbl") }, { additionalProperties: false }),
          response: { 200: DataEnvelope(ContactSchema), ...NATIVE_ERROR_RESPONSES },
        },
      },
      async (request, reply) => {
        const { id } = request.params;
        const { label_id } = request.body;
        return runWrite(request, reply, async (tx) => {
          const scope = scopeOf(request, tx);
          const account = await pathAccountOf(scope, request.params.phone_number_id);
          await setContactLabel(scope, id, label_id, "attach", account?.id);
          const contact = await getContact(scope, id, account?.id);
          return { status: 200, body: { data: contactOut(contact) } };
        });
      },
    );

    app.delete(
      `${base}/:id/labels/:label_id`,
      {
        schema: {
          tags,
          summary: `Detach a label from a contact${suffix}`,
          description: "Detaching a label the contact does not carry is a no-op.",
          params: style.params({ id: Id("ctc"), label_id: Id("lbl") }),
          response: { 200: DataEnvelope(ContactSchema), ...NATIVE_ERROR_RESPONSES },
        },
      },
      async (request, reply) => {
        const { id, label_id } = request.params;
        return runWrite(request, reply, async (tx) => {
          const scope = scopeOf(request, tx);
          const account = await pathAccountOf(scope, request.params.phone_number_id);
          await setContactLabel(scope, id, label_id, "detach", account?.id);
          const contact = await getContact(scope, id, account?.id);
          return { status: 200, body: { data: contactOut(contact) } };
        });
      },
    );
  }
};
