import { readFile } from "node:fs/promises";
import { join } from "node:path";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance } from "fastify";
import { ensureDashboardBuilt, WEB_ROOT } from "../../web/build.ts";

/**
 * The dashboard's own policy: its script, stylesheet and API calls come from
 * this origin only; no inline script or style, no frames, no plugins. Every
 * other response keeps the deny-all policy set in app.ts.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

/**
 * Serves the dashboard (web/): `GET /` is its page, `/app/*` its built
 * script and stylesheet. It talks to the public /v1 API only, with the API
 * key the user types (kept in sessionStorage, sent as a header).
 */
export async function dashboardRoutes(app: FastifyInstance): Promise<void> {
  await ensureDashboardBuilt();
  // Runs after the root onRequest hook: replaces its deny-all policy for these routes.
  app.addHook("onRequest", (_request, reply, done) => {
    reply.header("content-security-policy", DASHBOARD_CSP);
    reply.header("cache-control", "no-cache");
    done();
  });
  await app.register(fastifyStatic, {
    root: join(WEB_ROOT, "dist"),
    prefix: "/app/",
    decorateReply: false,
    index: false,
    list: false,
    cacheControl: false,
  });
  const index = join(WEB_ROOT, "index.html");
  const page = await readFile(index, "utf8");
  app.get("/", { schema: { hide: true } }, async (_request, reply) => {
    reply.type("text/html; charset=utf-8");
    return page;
  });
}
