import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { toIso } from "../../domain/clock.ts";
import {
  createLabel,
  deleteLabel,
  getLabel,
  LABEL_COLORS,
  LABEL_NAME_MAX,
  type LabelRow,
  listLabels,
  updateLabel,
} from "../../domain/labels.ts";
import { canonicalScope, DEFAULT_LIMIT, pageOf } from "../../domain/pagination.ts";
import { ApiError } from "../../errors.ts";
import { scopeOf } from "../auth.ts";
import { DataEnvelope, Id, ListEnvelope, NATIVE_ERROR_RESPONSES, PageQuery, Timestamp } from "../schemas.ts";
import { runWrite } from "../write-transaction.ts";

export const Color = Type.Union(
  LABEL_COLORS.map((c) => Type.Literal(c)),
  { description: "Default gray" },
);
const Name = Type.String({
  minLength: 1,
  maxLength: LABEL_NAME_MAX,
  description: "Unique per organisation, case-insensitive",
});

export const LabelSchema = Type.Object(
  {
    object: Type.Literal("label"),
    id: Type.String(),
    name: Type.String(),
    color: Type.String(),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { $id: "Label" },
);

export function labelOut(row: LabelRow) {
  return {
    object: "label" as const,
    id: row.id,
    name: row.name,
    color: row.color,
    created_at: toIso(row.created_at),
    updated_at: toIso(row.updated_at),
  };
}

/** `/v1/labels`: CRUD of an organisation's labels (spec §1, §3). */
export const labelRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { cursors } = app.services;
  const tags = ["labels"];
  const idParams = Type.Object({ id: Id("lbl") });

  app.get(
    "/labels",
    {
      schema: {
        tags,
        summary: "List labels (newest first)",
        querystring: Type.Object({ ...PageQuery }, { additionalProperties: false }),
        response: { 200: ListEnvelope(LabelSchema), ...NATIVE_ERROR_RESPONSES },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? DEFAULT_LIMIT;
      const cursorScope = canonicalScope("native.labels", scopeOf(request).organizationId, {});
      const { cursor } = request.query;
      const after = cursor === undefined ? undefined : cursors.decode(cursorScope, cursor);
      const rows = await listLabels(scopeOf(request), after, limit + 1);
      return pageOf(rows, limit, cursors, cursorScope, labelOut);
    },
  );

  app.post(
    "/labels",
    {
      schema: {
        tags,
        summary: "Create a label",
        body: Type.Object({ name: Name, color: Type.Optional(Color) }, { additionalProperties: false }),
        response: { 201: DataEnvelope(LabelSchema), ...NATIVE_ERROR_RESPONSES },
      },
    },
    async (request, reply) =>
      runWrite(request, reply, async (tx) => {
        const row = await createLabel(scopeOf(request, tx), request.body);
        return { status: 201, body: { data: labelOut(row) } };
      }),
  );

  app.get(
    "/labels/:id",
    {
      schema: {
        tags,
        summary: "Fetch a label",
        params: idParams,
        response: { 200: DataEnvelope(LabelSchema), ...NATIVE_ERROR_RESPONSES },
      },
    },
    async (request) => ({
      data: labelOut(await getLabel(scopeOf(request), request.params.id)),
    }),
  );

  app.patch(
    "/labels/:id",
    {
      schema: {
        tags,
        summary: "Rename or recolour a label",
        params: idParams,
        body: Type.Object(
          { name: Type.Optional(Name), color: Type.Optional(Color) },
          { additionalProperties: false },
        ),
        response: { 200: DataEnvelope(LabelSchema), ...NATIVE_ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      if (request.body.name === undefined && request.body.color === undefined) {
        throw new ApiError("missing_required_field", "Give at least one of name, color.");
      }
      return runWrite(request, reply, async (tx) => {
        const row = await updateLabel(scopeOf(request, tx), request.params.id, request.body);
        return { status: 200, body: { data: labelOut(row) } };
      });
    },
  );

  app.delete(
    "/labels/:id",
    {
      schema: {
        tags,
        summary: "Delete a label (detaches it from every contact)",
        params: idParams,
        response: {
          200: DataEnvelope(
            Type.Object({ id: Type.String(), object: Type.Literal("label"), deleted: Type.Literal(true) }),
          ),
          ...NATIVE_ERROR_RESPONSES,
        },
      },
    },
    async (request, reply) =>
      runWrite(request, reply, async (tx) => {
        await deleteLabel(scopeOf(request, tx), request.params.id);
        return {
          status: 200,
          body: {
            data: { id: request.params.id, object: "label" as const, deleted: true as const },
          },
        };
      }),
  );
};
