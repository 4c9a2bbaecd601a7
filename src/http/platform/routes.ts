import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { protect } from "../auth.ts";
import { platformContactRoutes } from "./contacts.ts";
import { platformCustomerRoutes } from "./customers.ts";

/**
 * The platform surface (`/platform/v1`, Kapso's Platform API): contacts under
 * `/whatsapp/contacts`, customers under `/customers` (and, as the contract's
 * table reads, under `/whatsapp/customers` too). Every route needs an API key
 * (`X-API-Key` or Bearer).
 */
export const platformRoutes: FastifyPluginAsyncTypebox = async (app) => {
  protect(app);
  await app.register(platformContactRoutes, { prefix: "/whatsapp" });
  await app.register(platformCustomerRoutes);
  await app.register(platformCustomerRoutes, { prefix: "/whatsapp" });
};
