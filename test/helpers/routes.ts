import type { FastifyInstance } from "fastify";

export interface RouteCase {
  method: string;
  url: string;
}

const SAMPLE_PARAMS: Record<string, string> = {
  id: "ctc_01J0000000000000000000000A",
  label_id: "lbl_01J0000000000000000000000A",
  phone_number_id: "106540352242922",
  version: "v21.0",
};

/**
 * Every route of the app that requires an API key, read from the generated
 * OpenAPI document (routes declaring `security: []` are public), with sample
 * values for path parameters. Auth tests iterate over this list, so a route
 * added later is covered without copying a test.
 */
export function protectedRoutes(
  app: FastifyInstance,
  prefixes = ["/v1/", "/platform/", "/meta/"],
): RouteCase[] {
  const document = app.swagger() as { paths?: Record<string, Record<string, { security?: unknown[] }>> };
  const cases: RouteCase[] = [];
  for (const [path, operations] of Object.entries(document.paths ?? {})) {
    if (!prefixes.some((p) => path.startsWith(p))) continue;
    for (const [method, operation] of Object.entries(operations)) {
      if (Array.isArray(operation.security) && operation.security.length === 0) continue;
      const url = path.replace(/\{([^}]+)\}/g, (_, name: string) => SAMPLE_PARAMS[name] ?? "sample");
      cases.push({ method: method.toUpperCase(), url });
    }
  }
  return cases;
}
