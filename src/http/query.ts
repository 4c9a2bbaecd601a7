import type { FastifyReply, FastifyRequest, RouteOptions } from "fastify";

/**
 * Query strings are text; a route's querystring schema types its numbers and
 * booleans as such (`limit`, `page`, `per_page`, `marketing_opt_out`, …), so
 * handlers get them typed and OpenAPI shows them. Before validation, a value
 * written exactly as its type becomes it: digits an integer, `true`/`false` a
 * boolean. Anything else stays text and fails validation with the property's
 * code and words (`x-error-code`, `x-error-message`). This is stricter than
 * Ajv's own coercion, which would read "1e2", " 5" or "0x10" as numbers.
 */
type Kind = "integer" | "boolean";

const DIGITS = /^\d{1,15}$/;

function kindsOf(schema: unknown): Array<[string, Kind]> {
  if (typeof schema !== "object" || schema === null) return [];
  const properties: unknown = Reflect.get(schema, "properties");
  if (typeof properties !== "object" || properties === null) return [];
  const kinds: Array<[string, Kind]> = [];
  for (const [name, property] of Object.entries(properties)) {
    const type: unknown = typeof property === "object" && property !== null ? property.type : undefined;
    if (type === "integer" || type === "boolean") kinds.push([name, type]);
  }
  return kinds;
}

function coerced(value: string, kind: Kind): unknown {
  if (kind === "integer") return DIGITS.test(value) ? Number(value) : value;
  return value === "true" ? true : value === "false" ? false : value;
}

/**
 * onRoute hook (installed once in `buildApp`): a route whose querystring has
 * integer or boolean properties reads them as such before its validation.
 */
export function queryCoercionOnRoute(route: RouteOptions): void {
  const kinds = kindsOf(route.schema?.querystring);
  if (kinds.length === 0) return;
  const coerce = (request: FastifyRequest, _reply: FastifyReply, done: () => void) => {
    const query: unknown = request.query;
    if (typeof query === "object" && query !== null) {
      for (const [name, kind] of kinds) {
        const value: unknown = Reflect.get(query, name);
        if (typeof value === "string") Reflect.set(query, name, coerced(value, kind));
      }
    }
    done();
  };
  route.preValidation = [coerce, ...[route.preValidation ?? []].flat()];
}
