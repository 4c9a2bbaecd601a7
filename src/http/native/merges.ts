import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { type Static, Type } from "typebox";
import { now, toIso, toIsoOrNull } from "../../domain/clock.ts";
import {
  type FieldOutcome,
  latestUndoableMergeId,
  listDuplicates,
  listMergesOf,
  MAX_MERGE_FROM,
  type MergeCommand,
  type MergeField,
  type MergePlan,
  mergeContacts,
  mergedIdentitiesOf,
  type PreferKey,
  planMerge,
  undoMerge,
} from "../../domain/merges.ts";
import { canonicalScope, DEFAULT_LIMIT, pageOf } from "../../domain/pagination.ts";
import { renderNativeError } from "../../errors.ts";
import type { MergeRow } from "../../store/repositories/merges.ts";
import { scopeOf } from "../auth.ts";
import {
  DataEnvelope,
  Id,
  instantOf,
  ListEnvelope,
  ListPage,
  NATIVE_ERROR_RESPONSES,
  NullableString,
  PageQuery,
  QueryBoolean,
  Timestamp,
  WithRequestId,
} from "../schemas.ts";
import { runWrite } from "../write-transaction.ts";
import { ContactSchema, contactOut, MetadataSchema } from "./representation.ts";
import { PATH_STYLES, pathAccountOf } from "./scope.ts";
import { NATIVE_FIELDS } from "./wire.ts";

/**
 * Merging duplicate contacts on the native surface (docs/merge.md): thin
 * translators over domain/merges.ts. Wire names: `name` is the domain's
 * `display_name`; everything else is as stored.
 */

const WIRE_FIELD: Record<MergeField | "marketing_opt_out" | "created_at", string> = {
  display_name: "name",
  profile_name: "profile_name",
  email: "email",
  username: "username",
  parent_business_scoped_user_id: "parent_business_scoped_user_id",
  customer_id: "customer_id",
  marketing_opt_out: "marketing_opt_out",
  created_at: "created_at",
};
const PREFER_WIRE: Record<string, PreferKey> = {
  name: "display_name",
  profile_name: "profile_name",
  email: "email",
  username: "username",
  parent_business_scoped_user_id: "parent_business_scoped_user_id",
  customer_id: "customer_id",
  metadata: "metadata",
};

const ContactId = Id("ctc");
const MergeBody = Type.Object(
  {
    from: Type.Array(ContactId, {
      minItems: 1,
      maxItems: MAX_MERGE_FROM,
      description: `The contacts merged into the one in the path (1–${MAX_MERGE_FROM})`,
    }),
    prefer: Type.Optional(
      Type.Object(Object.fromEntries(Object.keys(PREFER_WIRE).map((k) => [k, Type.Optional(ContactId)])), {
        additionalProperties: false,
        description: "field → the contact whose value wins (metadata: whose values win per key)",
      }),
    ),
    expected_updated_at: Type.Optional(
      Type.Union([Timestamp, Type.Record(Type.String(), Timestamp)], {
        description:
          "The survivor's updated_at as you saw it, or an object of contact id → updated_at; a contact changed since → 409 contact_changed",
      }),
    ),
  },
  { additionalProperties: false },
);
type MergeBodyType = Static<typeof MergeBody>;

const MergeQuery = Type.Object({ preview: Type.Optional(QueryBoolean()) }, { additionalProperties: false });

const MergeSchema = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal("merge"),
    survivor_id: Type.String(),
    merged_ids: Type.Array(Type.String()),
    prefer: Type.Record(Type.String(), Type.String()),
    labels_added: Type.Array(Type.String()),
    created_at: Timestamp,
    undo_until: Timestamp,
    undone_at: Type.Union([Timestamp, Type.Null()]),
    contact: Type.Optional(ContactSchema),
  },
  { $id: "Merge" },
);

const RefusalSchema = Type.Object(
  { code: Type.String(), message: Type.String(), param: Type.Optional(Type.String()) },
  { additionalProperties: true },
);

const PreviewSchema = Type.Object(
  {
    object: Type.Literal("merge_preview"),
    survivor_id: Type.String(),
    merged_ids: Type.Array(Type.String()),
    can_merge: Type.Boolean(),
    refusals: Type.Array(RefusalSchema),
    fields: Type.Array(
      Type.Object({
        field: Type.String(),
        value: Type.Unknown(),
        source: Type.String(),
        changed: Type.Boolean(),
      }),
    ),
    metadata: Type.Object({
      value: MetadataSchema,
      keys_added: Type.Array(Type.String()),
      keys_changed: Type.Array(Type.String()),
    }),
    labels: Type.Object({ added: Type.Array(Type.String()), total: Type.Integer() }),
    identities_moved: Type.Integer(),
  },
  { $id: "MergePreview" },
);

const IdentitySchema = Type.Object({
  contact_id: Type.String(),
  phone_number: NullableString(),
  business_scoped_user_id: NullableString(),
  username: NullableString(),
  whatsapp_account_id: Type.String(),
  merge_id: NullableString(),
});

const DuplicateSchema = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal("duplicate_candidate"),
    reasons: Type.Array(
      Type.Union([
        Type.Literal("same_email"),
        Type.Literal("same_phone_other_account"),
        Type.Literal("same_business_scoped_user_id"),
        Type.Literal("same_parent_business_scoped_user_id"),
        Type.Literal("same_name_similar_phone"),
      ]),
    ),
    contacts: Type.Array(ContactSchema, { minItems: 2, maxItems: 2 }),
    detected_at: Timestamp,
  },
  { $id: "DuplicateCandidate" },
);

function mergeOut(row: MergeRow) {
  return {
    id: row.id,
    object: "merge" as const,
    survivor_id: row.survivor_id,
    merged_ids: JSON.parse(row.merged_ids) as string[],
    prefer: wirePrefer(JSON.parse(row.prefer) as Record<string, string>),
    labels_added: JSON.parse(row.labels_added) as string[],
    created_at: toIso(row.created_at),
    undo_until: toIso(row.undo_until),
    undone_at: toIsoOrNull(row.undone_at),
  };
}

function wirePrefer(prefer: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, id] of Object.entries(prefer)) {
    out[Object.keys(PREFER_WIRE).find((w) => PREFER_WIRE[w] === key) ?? key] = id;
  }
  return out;
}

function commandOf(id: string, body: MergeBodyType): MergeCommand {
  const prefer: Partial<Record<PreferKey, string>> = {};
  for (const [wire, contactId] of Object.entries(body.prefer ?? {})) {
    if (contactId !== undefined) prefer[PREFER_WIRE[wire]!] = contactId;
  }
  const expected = body.expected_updated_at;
  return {
    survivorId: id,
    from: body.from,
    prefer,
    expectedUpdatedAt:
      expected === undefined
        ? undefined
        : typeof expected === "string"
          ? instantOf(expected)
          : Object.fromEntries(Object.entries(expected).map(([k, v]) => [k, instantOf(v)])),
  };
}

type MergeOut = Static<typeof MergeSchema>;
type PreviewOut = Static<typeof PreviewSchema>;

function previewOut(plan: MergePlan, requestId: string) {
  const fieldOut = (f: FieldOutcome) => ({
    field: WIRE_FIELD[f.field],
    value: f.field === "created_at" ? toIso(f.value as number) : f.value,
    source: f.source,
    changed: f.changed,
  });
  return {
    object: "merge_preview" as const,
    survivor_id: plan.survivor.id,
    merged_ids: plan.merged.map((row) => row.id),
    can_merge: plan.refusals.length === 0,
    refusals: plan.refusals.map((error) => {
      const {
        type: _type,
        request_id: _rid,
        ...rest
      } = renderNativeError(error.named(NATIVE_FIELDS), requestId).error;
      return rest;
    }),
    fields: plan.fields.map(fieldOut),
    metadata: plan.metadata,
    labels: { added: plan.labels_added, total: plan.labels_total },
    identities_moved: plan.identities_moved,
  };
}

export const mergeRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { cursors } = app.services;
  const tags = ["merge"];

  for (const style of PATH_STYLES) {
    app.get(
      `${style.base}/duplicates`,
      {
        schema: {
          tags,
          summary: `Candidate duplicate pairs${style.suffix && " touching one account"}, newest first`,
          description:
            "Pairs found on write through indexed keys: same email (case-insensitive), same phone in another account, same BSUID or parent BSUID, same name with a phone sharing its last 7 digits.",
          params: style.params(),
          querystring: Type.Object(PageQuery, { additionalProperties: false }),
          response: { 200: ListEnvelope(DuplicateSchema), ...NATIVE_ERROR_RESPONSES },
        },
      },
      async (request) => {
        const scope = scopeOf(request);
        const limit = request.query.limit ?? DEFAULT_LIMIT;
        const account = await pathAccountOf(scope, request.params.phone_number_id);
        const cursorScope = canonicalScope("native.duplicates", scope.organizationId, {
          account: account?.id,
        });
        const after =
          request.query.cursor === undefined ? undefined : cursors.decode(cursorScope, request.query.cursor);
        const rows = await listDuplicates(scope, account?.id, after, limit + 1);
        const page = pageOf(rows, limit, cursors, cursorScope, (pair) => ({
          id: pair.id,
          object: "duplicate_candidate" as const,
          reasons: pair.reasons,
          contacts: pair.contacts.map(contactOut),
          detected_at: toIso(pair.detected_at),
        }));
        return page;
      },
    );
  }

  const idParams = Type.Object({ id: ContactId });

  app.post(
    "/contacts/:id/merge",
    {
      schema: {
        tags,
        summary: "Merge contacts into this one (or preview the merge)",
        description:
          "The contact in the path survives and keeps its id; the contacts in `from` are merged into it by the rules of docs/merge.md. `?preview=true` answers the result field by field, or the coded refusals, and writes nothing.",
        params: idParams,
        querystring: MergeQuery,
        body: MergeBody,
        response: {
          200: DataEnvelope(Type.Union([MergeSchema, PreviewSchema])),
          ...NATIVE_ERROR_RESPONSES,
        },
      },
    },
    async (request, reply) => {
      const cmd = commandOf(request.params.id, request.body);
      const preview = request.query.preview === true;
      return runWrite<{ data: MergeOut | PreviewOut }>(request, reply, async (tx) => {
        const txScope = scopeOf(request, tx);
        if (preview) {
          const plan = await planMerge(txScope, cmd, now());
          return { status: 200, body: { data: previewOut(plan, request.id) } };
        }
        const result = await mergeContacts(txScope, cmd, now());
        return {
          status: 200,
          body: {
            data: { ...mergeOut(result.merge), contact: contactOut(result.contact) },
          },
        };
      });
    },
  );

  const undoResponse = {
    200: DataEnvelope(
      Type.Object({
        ...MergeSchema.properties,
        restored_ids: Type.Array(Type.String()),
        kept_on_survivor: Type.Array(Type.String()),
      }),
    ),
    ...NATIVE_ERROR_RESPONSES,
  };

  const undo = async (
    request: Parameters<typeof scopeOf>[0],
    mergeId: string | ((scope: ReturnType<typeof scopeOf>) => Promise<string>),
  ) => {
    return async (tx: Parameters<Parameters<typeof runWrite>[2]>[0]) => {
      const txScope = scopeOf(request, tx);
      const at = now();
      const id = typeof mergeId === "string" ? mergeId : await mergeId(txScope);
      const result = await undoMerge(txScope, id, at);
      return {
        status: 200,
        body: {
          data: {
            ...mergeOut(result.merge),
            contact: contactOut(result.contact),
            restored_ids: result.restored,
            kept_on_survivor: result.kept.map((f) => WIRE_FIELD[f as MergeField] ?? f),
          },
        },
      };
    };
  };

  app.post(
    "/contacts/:id/unmerge",
    {
      schema: {
        tags,
        summary: "Undo the latest merge this contact survived (within 30 days)",
        params: idParams,
        body: Type.Optional(
          Type.Object(
            {
              merge_id: Type.Optional(Id("mrg", "A particular merge of this contact (default: the latest)")),
            },
            { additionalProperties: false },
          ),
        ),
        response: undoResponse,
      },
    },
    async (request, reply) => {
      const contactId = request.params.id;
      const given = request.body?.merge_id;
      const fn = await undo(request, async (txScope) => {
        const latest = given ?? (await latestUndoableMergeId(txScope, contactId, now()));
        return latest;
      });
      return runWrite(request, reply, fn);
    },
  );

  app.post(
    "/merges/:merge_id/undo",
    {
      schema: {
        tags,
        summary: "Undo a merge (within 30 days)",
        params: Type.Object({ merge_id: Id("mrg") }),
        response: undoResponse,
      },
    },
    async (request, reply) => runWrite(request, reply, await undo(request, request.params.merge_id)),
  );

  app.get(
    "/contacts/:id/merges",
    {
      schema: {
        tags,
        summary: "The merges this contact survived, newest first, and the identities merged into it",
        params: idParams,
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: {
          200: WithRequestId(
            Type.Object({
              ...ListPage(MergeSchema).properties,
              identities: Type.Array(IdentitySchema),
            }),
          ),
          ...NATIVE_ERROR_RESPONSES,
        },
      },
    },
    async (request) => {
      const scope = scopeOf(request);
      const limit = request.query.limit ?? DEFAULT_LIMIT;
      const cursorScope = canonicalScope("native.merges", scope.organizationId, {
        contact: request.params.id,
      });
      const after =
        request.query.cursor === undefined ? undefined : cursors.decode(cursorScope, request.query.cursor);
      const { contact, merges } = await listMergesOf(scope, request.params.id, after, limit + 1);
      const identities = await mergedIdentitiesOf(scope.db, contact.id);
      return {
        ...pageOf(merges, limit, cursors, cursorScope, mergeOut),
        identities: identities.map((row) => ({
          contact_id: row.id,
          phone_number: row.phone_number,
          business_scoped_user_id: row.business_scoped_user_id,
          username: row.username,
          whatsapp_account_id: row.account_id,
          merge_id: row.merge_id,
        })),
      };
    },
  );
};
