import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { FastifyRequest } from "fastify";
import { Type } from "typebox";
import {
  createCustomer,
  deleteCustomer,
  getCustomer,
  listCustomers,
  requireExternalId,
  updateCustomer,
} from "../../domain/customers.ts";
import { ApiError } from "../../errors.ts";
import { principalOf, scopeOf } from "../auth.ts";
import { Limit } from "../schemas.ts";
import { runWrite } from "../write-transaction.ts";
import { PLATFORM_DEFAULT_LIMIT } from "./contacts.ts";
import { PLATFORM_ERROR_RESPONSES } from "./errors.ts";
import { boundOf, kapsoCursorOrg } from "./pagination.ts";
import { CustomerSchema, customerOut, PlatformPaging, platformPaging } from "./representation.ts";

const ExternalId = Type.Union([Type.String({ maxLength: 256 }), Type.Null()]);
const IdParams = Type.Object({ id: Type.String({ maxLength: 64, description: "The customer's UUID" }) });
const Data = Type.Object({ data: CustomerSchema });

/** `/customers…`: the tenants contacts link to by `customer_id` (Kapso's platform API). */
export const platformCustomerRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { store } = app.services;
  const tags = ["platform"];
  const orgOf = (request: FastifyRequest) => principalOf(request).organization.id;

  app.get(
    "/customers",
    {
      schema: {
        tags,
        summary: "List customers",
        querystring: Type.Object(
          {
            external_customer_id: Type.Optional(Type.String({ maxLength: 256 })),
            limit: Type.Optional(Limit(100, PLATFORM_DEFAULT_LIMIT)),
            after: Type.Optional(Type.String()),
            before: Type.Optional(Type.String()),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ data: Type.Array(CustomerSchema), paging: PlatformPaging }),
          ...PLATFORM_ERROR_RESPONSES,
        },
      },
    },
    async (request) => {
      const { limit, after, before, external_customer_id } = request.query;
      const filters = {
        organizationId: orgOf(request),
        externalCustomerId:
          external_customer_id === undefined ? undefined : requireExternalId(external_customer_id),
      };
      const page = await listCustomers(
        store.db,
        filters,
        boundOf(after, before, kapsoCursorOrg(request)),
        limit ?? PLATFORM_DEFAULT_LIMIT,
      );
      return { data: page.rows.map(customerOut), paging: platformPaging(request, page) };
    },
  );

  app.post(
    "/customers",
    {
      schema: {
        tags,
        summary: "Create a customer",
        description:
          "Body `{ customer: { name, external_customer_id? } }`; a taken external_customer_id is 422.",
        body: Type.Object(
          {
            customer: Type.Object(
              { name: Type.String({ maxLength: 256 }), external_customer_id: Type.Optional(ExternalId) },
              { additionalProperties: false },
            ),
          },
          { additionalProperties: false },
        ),
        response: { 201: Data, ...PLATFORM_ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const organizationId = orgOf(request);
      return runWrite(request, reply, async (tx) => {
        const row = await createCustomer(tx, organizationId, request.body.customer);
        return { status: 201, body: { data: customerOut(row) } };
      });
    },
  );

  app.get(
    "/customers/:id",
    {
      schema: {
        tags,
        summary: "Fetch a customer",
        params: IdParams,
        response: { 200: Data, ...PLATFORM_ERROR_RESPONSES },
      },
    },
    async (request) => ({
      data: customerOut(await getCustomer(store.db, orgOf(request), request.params.id)),
    }),
  );

  app.patch(
    "/customers/:id",
    {
      schema: {
        tags,
        summary: "Update a customer",
        body: Type.Object(
          {
            customer: Type.Object(
              {
                name: Type.Optional(Type.String({ maxLength: 256 })),
                external_customer_id: Type.Optional(ExternalId),
              },
              { additionalProperties: false },
            ),
          },
          { additionalProperties: false },
        ),
        params: IdParams,
        response: { 200: Data, ...PLATFORM_ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const fields = request.body.customer;
      if (Object.keys(fields).length === 0) {
        throw new ApiError("missing_required_field", "Give at least one of name, external_customer_id.", {
          param: "customer",
        });
      }
      const organizationId = orgOf(request);
      return runWrite(request, reply, async (tx) => {
        const row = await updateCustomer(tx, organizationId, request.params.id, fields);
        return { status: 200, body: { data: customerOut(row) } };
      });
    },
  );

  app.delete(
    "/customers/:id",
    {
      schema: {
        tags,
        summary: "Delete a customer (204); its contacts stay, unlinked",
        params: IdParams,
        response: { 204: Type.Null(), ...PLATFORM_ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      await runWrite(request, reply, async (tx) => {
        await deleteCustomer(scopeOf(request, tx), request.params.id);
        return { status: 204, body: null };
      });
      return reply.send(null);
    },
  );
};
