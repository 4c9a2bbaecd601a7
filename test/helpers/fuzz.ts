/**
 * Schema-driven request fuzzing. Routes and their request shapes are read from
 * the app's generated OpenAPI document (`app.swagger()`), so a route merged
 * later is fuzzed without editing this file. For each route, fast-check builds
 * requests that start from a plausible value of every parameter and body field
 * (derived from the schema, using real ids of the store where a pattern names
 * an id prefix) and then break one thing: wrong types, missing and extra
 * fields, huge strings, deep nesting, invalid UTF-8, NUL bytes,
 * prototype-pollution keys, SQL / LIKE / full-text metacharacters, absurd
 * limits, garbage cursors and ids, odd content types and raw bodies.
 */
import fc from "fast-check";
import type { FastifyInstance } from "fastify";

export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  pattern?: string;
  format?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  default?: unknown;
}

export interface ParamSpec {
  name: string;
  required: boolean;
  schema: JsonSchema;
}

export interface FuzzRoute {
  method: string;
  /** OpenAPI path template, e.g. `/v1/{phone_number_id}/contacts/{id}`. */
  template: string;
  /** Declares `security: []`: answers without credentials. */
  public: boolean;
  pathParams: ParamSpec[];
  query: ParamSpec[];
  /** JSON body schema, when the route takes one. */
  body: JsonSchema | undefined;
  /** Content types the route declares for its body. */
  bodyTypes: string[];
}

interface OpenApiOperation {
  security?: unknown[];
  parameters?: Array<{ name: string; in: string; required?: boolean; schema?: JsonSchema }>;
  requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
}

const METHODS = new Set(["get", "post", "put", "patch", "delete"]);

/** Every operation of the generated OpenAPI document, with its parameters and body schema. */
export function fuzzRoutes(app: FastifyInstance): FuzzRoute[] {
  const document = app.swagger() as { paths?: Record<string, Record<string, OpenApiOperation>> };
  const routes: FuzzRoute[] = [];
  for (const [template, operations] of Object.entries(document.paths ?? {})) {
    for (const [method, operation] of Object.entries(operations)) {
      if (!METHODS.has(method)) continue;
      const params = operation.parameters ?? [];
      const spec = (where: string) =>
        params
          .filter((p) => p.in === where)
          .map((p) => ({ name: p.name, required: p.required === true, schema: p.schema ?? {} }));
      const content = operation.requestBody?.content ?? {};
      routes.push({
        method: method.toUpperCase(),
        template,
        public: Array.isArray(operation.security) && operation.security.length === 0,
        pathParams: spec("path"),
        query: spec("query"),
        body: content["application/json"]?.schema,
        bodyTypes: Object.keys(content),
      });
    }
  }
  return routes;
}

/** Real values of the store the fuzzer may use: ids by prefix, phone_number_ids. */
export interface FuzzContext {
  ids: Record<string, string[]>;
  phoneNumberIds: string[];
}

export interface FuzzRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: string | Buffer;
  /** What was broken, for failure messages. */
  mutation: string;
}

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

const ulidArb = fc
  .array(fc.integer({ min: 0, max: 31 }), { minLength: 26, maxLength: 26 })
  .map((digits) => digits.map((d) => CROCKFORD[d]).join(""));

/** SQL, LIKE, FTS5 and tsquery metacharacters: search must treat them as text. */
export const METACHARACTER_STRINGS = [
  "%",
  "_",
  "\\",
  "%_%",
  "\\%",
  "a%b_c\\",
  "' OR 1=1 --",
  "'; DROP TABLE contacts; --",
  '"',
  'a"b',
  "*",
  "a*",
  "NEAR(a b)",
  "a OR b",
  "a AND NOT b",
  "name:x",
  "^a",
  "-a",
  "(",
  ")",
  "{}",
  "&|!:*",
  "$1",
  "?",
  "\u0000",
  "a\u0000b",
  "\u001f",
  "\uD800",
  "💥",
  "ﷺ",
  "İ",
];

const PROTO_JSON = [
  '{"__proto__":{"polluted":true}}',
  '{"constructor":{"prototype":{"polluted":true}}}',
  '{"prototype":{"polluted":true}}',
];

function nested(depth: number, kind: "array" | "object"): unknown {
  let value: unknown = "bottom";
  for (let i = 0; i < depth; i++) value = kind === "array" ? [value] : { a: value };
  return value;
}

/** JSON values of every wrong kind a client (or attacker) might send in place of a field. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(null, true, false, 0, -1, 1e308, -1e-308, 3.5, "", [], {}, [null], { "": "" }),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 30 }),
  fc.string({ unit: "binary", maxLength: 30 }),
  fc.constantFrom(...METACHARACTER_STRINGS),
  fc.constantFrom(1_000, 10_000, 300_000).map((n) => "x".repeat(n)),
  fc.string({ maxLength: 10 }).map((s) => `${s}\u0000${s}`),
  fc
    .tuple(fc.integer({ min: 10, max: 3000 }), fc.constantFrom("array" as const, "object" as const))
    .map(([depth, kind]) => nested(depth, kind)),
  fc.constantFrom(...PROTO_JSON).map((text) => JSON.parse(text) as unknown),
  fc.jsonValue({ maxDepth: 3 }),
  fc.array(fc.string({ maxLength: 5 }), { minLength: 200, maxLength: 400 }),
);

/** A plausible value of `schema` (valid when the schema says enough to make one). */
export function sampleOf(schema: JsonSchema, ctx: FuzzContext, name = ""): fc.Arbitrary<unknown> {
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (alternatives && alternatives.length > 0)
    return fc.oneof(...alternatives.map((s) => sampleOf(s, ctx, name)));
  if (schema.allOf && schema.allOf.length > 0) return sampleOf(schema.allOf[0]!, ctx, name);
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case "null":
      return fc.constant(null);
    case "boolean":
      return fc.boolean();
    case "integer":
      return fc.integer({ min: schema.minimum ?? 0, max: schema.maximum ?? 1_000_000 });
    case "number":
      return fc.double({ min: schema.minimum ?? 0, max: schema.maximum ?? 1_000_000, noNaN: true });
    case "array":
      return fc.array(schema.items ? sampleOf(schema.items, ctx, name) : fc.jsonValue({ maxDepth: 1 }), {
        minLength: schema.minItems ?? 0,
        maxLength: Math.min(schema.maxItems ?? 3, 3),
      });
    case "object":
      return objectSample(schema, ctx);
    default:
      return stringSample(schema, ctx, name);
  }
}

function objectSample(schema: JsonSchema, ctx: FuzzContext): fc.Arbitrary<Record<string, unknown>> {
  const properties = schema.properties;
  if (!properties) {
    // A free-form object (metadata): a few flat keys.
    return fc.dictionary(
      fc.string({ minLength: 1, maxLength: 12 }),
      fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.boolean(), fc.constant(null)),
      { maxKeys: 4 },
    );
  }
  const required = new Set(schema.required ?? []);
  const fields = Object.fromEntries(
    Object.entries(properties).map(([key, sub]) => [key, sampleOf(sub, ctx, key)]),
  );
  return fc.record(fields, {
    requiredKeys: Object.keys(properties).filter((key) => required.has(key)),
  }) as fc.Arbitrary<Record<string, unknown>>;
}

function stringSample(schema: JsonSchema, ctx: FuzzContext, name: string): fc.Arbitrary<unknown> {
  const prefix = schema.pattern ? /^\^([a-z]+)_/.exec(schema.pattern)?.[1] : undefined;
  if (prefix) {
    const known = ctx.ids[prefix] ?? [];
    const random = ulidArb.map((u) => `${prefix}_${u}`);
    return known.length > 0 ? fc.oneof(fc.constantFrom(...known), random) : random;
  }
  if (schema.pattern?.startsWith("^\\d") || name === "phone_number_id") {
    const random = fc.stringMatching(/^\d{6,20}$/);
    return ctx.phoneNumberIds.length > 0 ? fc.oneof(fc.constantFrom(...ctx.phoneNumberIds), random) : random;
  }
  if (schema.format === "date-time") {
    return fc
      .date({
        min: new Date("2000-01-01T00:00:00Z"),
        max: new Date("2100-01-01T00:00:00Z"),
        noInvalidDate: true,
      })
      .map((d) => d.toISOString());
  }
  if (/phone|wa_id|from/.test(name)) {
    // E.164 numbers, and (for `from`) the phone_number_ids of the store's accounts.
    const phones: fc.Arbitrary<string>[] = [
      fc.integer({ min: 100_000_000, max: 999_999_999 }).map((n) => `+62811${n}`),
      fc.integer({ min: 1_000_000, max: 9_999_999 }).map((n) => `+1415${n}`),
    ];
    if (ctx.phoneNumberIds.length > 0) phones.push(fc.constantFrom(...ctx.phoneNumberIds));
    return fc.oneof(...phones);
  }
  if (/email/.test(name)) return fc.emailAddress();
  if (name === "limit") return fc.integer({ min: 1, max: 100 }).map(String);
  const min = schema.minLength ?? (name === "search" ? 1 : 0);
  return fc.string({ minLength: min, maxLength: Math.max(min, Math.min(schema.maxLength ?? 30, 30)) });
}

/** Path segments that are already percent-encoded (or deliberately not). */
const HOSTILE_SEGMENTS = [
  "%00",
  "%FF",
  "%E0%80",
  "%",
  "%zz",
  "..",
  "%2e%2e",
  "%2F",
  "a%2Fb",
  "%20",
  "__proto__",
  "constructor",
  "-1",
  "1e999",
  "%27%20OR%20%271%27%3D%271",
  "ctc_01j00000000000000000000000",
  "ctc_01J0000000000000000000000",
  "ctc_01J000000000000000000000000",
  "lbl_01J0000000000000000000000A",
  "org_01J0000000000000000000000A",
  "%EF%BC%90",
  "x".repeat(600),
  "9".repeat(30),
];

/** Query values, already percent-encoded: absurd limits, garbage cursors, metacharacters, bad encodings. */
const HOSTILE_QUERY_VALUES = [
  "",
  "-1",
  "0",
  "101",
  "1e9",
  "99999999999999999999999999",
  "0x10",
  "%20%205",
  "5.0",
  "NaN",
  "Infinity",
  "%00",
  "a%00b",
  "%FF",
  "%C3%28",
  "%",
  "%2",
  "true",
  "null",
  "[]",
  "x".repeat(5000),
  "eyJhIjoxfQ",
  "eyJhIjoxfQ.c2ln",
  "....",
  "%2B%2B%2B",
];

const encodedMetacharacters = METACHARACTER_STRINGS.map((s) =>
  encodeURIComponent(s.replace(/[\uD800-\uDFFF]/g, "x")),
);

const hostileQueryValue = fc.oneof(
  fc.constantFrom(...HOSTILE_QUERY_VALUES),
  fc.constantFrom(...encodedMetacharacters),
  fc.string({ maxLength: 40 }).map(encodeURIComponent),
  fc.base64String({ maxLength: 200 }).map(encodeURIComponent),
);

/** Raw bodies: broken JSON, bad bytes, deep nesting, huge documents, duplicate and pollution keys. */
const rawBodies: fc.Arbitrary<{ payload: string | Buffer; label: string }> = fc.oneof(
  fc
    .constantFrom(
      "",
      "{",
      '{"a":',
      "null",
      "[]",
      '"text"',
      "123",
      "true",
      "{}{}",
      "\uFEFF{}",
      '{"name":"a","name":"b"}',
      '{"a":"\\ud800"}',
      '{"a":"\\u0000"}',
      "{'single':'quotes'}",
      "NaN",
      ...PROTO_JSON,
    )
    .map((payload) => ({ payload, label: `raw ${JSON.stringify(payload).slice(0, 40)}` })),
  fc
    .constantFrom(
      [0xff],
      [0xfe, 0xff],
      [0xc3, 0x28],
      [0xe2, 0x28, 0xa1],
      [0xf0, 0x28, 0x8c, 0x28],
      [0xed, 0xa0, 0x80],
      [0x00],
    )
    .map((bytes) => ({
      payload: Buffer.concat([
        Buffer.from('{"name":"'),
        Buffer.from(bytes),
        Buffer.from('","phone_number":"+6281'),
      ]),
      label: `invalid UTF-8 ${bytes.map((b) => b.toString(16)).join(" ")}`,
    })),
  fc.constantFrom(...[0xff, 0xc3, 0xed]).map((byte) => ({
    payload: Buffer.concat([Buffer.from('{"name":"ab'), Buffer.from([byte]), Buffer.from('cd"}')]),
    label: `invalid UTF-8 in a value (${byte.toString(16)})`,
  })),
  fc.integer({ min: 1_000, max: 200_000 }).map((depth) => ({
    payload: "[".repeat(depth) + "]".repeat(depth),
    label: `array nested ${depth} deep`,
  })),
  fc.integer({ min: 1_000, max: 100_000 }).map((depth) => ({
    payload: '{"a":'.repeat(depth) + "1" + "}".repeat(depth),
    label: `object nested ${depth} deep`,
  })),
  fc.constant({ payload: `{"name":"${"x".repeat(1_100_000)}"}`, label: "1.1 MB body" }),
);

const CONTENT_TYPES = [
  "text/plain",
  "application/x-www-form-urlencoded",
  "application/json; charset=latin1",
  "application/json; charset=utf-16",
  "application/xml",
  "multipart/form-data; boundary=x",
  "application/JSON",
  "*/*",
  "",
];

function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{([^}]+)\}/g, (_, name: string) => values[name] ?? "x");
}

type Mutation =
  | "valid"
  | "path"
  | "query-hostile"
  | "query-unknown"
  | "query-repeated"
  | "query-missing"
  | "body-field"
  | "body-missing"
  | "body-extra"
  | "body-proto"
  | "body-top"
  | "body-raw"
  | "content-type"
  | "auth";

/** Requests for one route: a plausible base with one thing broken. */
export function requestArb(
  route: FuzzRoute,
  ctx: FuzzContext,
  auth: { headers: Record<string, string> },
): fc.Arbitrary<FuzzRequest> {
  const mutations: Mutation[] = [
    "valid",
    "query-unknown",
    "query-repeated",
    "content-type",
    "auth",
    "body-raw",
  ];
  if (route.pathParams.length > 0) mutations.push("path", "path");
  if (route.query.length > 0) mutations.push("query-hostile", "query-hostile", "query-hostile");
  if (route.query.some((q) => q.required)) mutations.push("query-missing");
  if (route.body)
    mutations.push(
      "body-field",
      "body-field",
      "body-field",
      "body-missing",
      "body-extra",
      "body-proto",
      "body-top",
    );

  const pathValues = fc.record(
    Object.fromEntries(
      route.pathParams.map((p) => [
        p.name,
        sampleOf(p.schema, ctx, p.name).map((v) => encodeURIComponent(String(v))),
      ]),
    ),
  ) as fc.Arbitrary<Record<string, string>>;
  const queryValues = fc.record(
    Object.fromEntries(
      route.query.map((p) => [
        p.name,
        sampleOf(p.schema, ctx, p.name).map((v) => encodeURIComponent(String(v))),
      ]),
    ),
    { requiredKeys: route.query.filter((q) => q.required).map((q) => q.name) },
  ) as fc.Arbitrary<Record<string, string>>;
  const bodyValue = route.body
    ? (sampleOf(route.body, ctx) as fc.Arbitrary<unknown>)
    : fc.constant(undefined);

  return fc
    .record({
      mutation: fc.constantFrom(...mutations),
      path: pathValues,
      query: queryValues,
      body: bodyValue,
      hostile: hostileValue,
      hostileSegment: fc.constantFrom(...HOSTILE_SEGMENTS),
      hostileQuery: hostileQueryValue,
      raw: rawBodies,
      pick: fc.nat(),
      extraKey: fc.oneof(
        fc.string({ minLength: 1, maxLength: 20 }),
        fc.constantFrom("__proto__", "constructor", "prototype", "", "a.b", "$where"),
      ),
      contentType: fc.constantFrom(...CONTENT_TYPES),
      badAuth: fc.constantFrom<Record<string, string>>(
        {},
        { authorization: "Bearer " },
        { authorization: "Bearer pb_live_" + "A".repeat(32) },
        { authorization: "Bearer pb_live_%00" },
        { authorization: "Basic Zm9vOmJhcg==" },
        { authorization: "Bearer " + "x".repeat(10_000) },
        { "x-api-key": "' OR 1=1 --" },
        { "x-api-key": "pb_live_" },
      ),
    })
    .map((c) => {
      const pick = <T>(list: readonly T[]): T | undefined =>
        list.length === 0 ? undefined : list[c.pick % list.length];
      const path = { ...c.path };
      const query: Array<[string, string]> = Object.entries(c.query);
      let body: unknown = c.body;
      let payload: string | Buffer | undefined;
      let headers: Record<string, string> = { ...auth.headers };
      let note: string = c.mutation;

      switch (c.mutation) {
        case "path": {
          const param = pick(route.pathParams)!;
          path[param.name] = c.hostileSegment;
          note = `path ${param.name}=${c.hostileSegment.slice(0, 40)}`;
          break;
        }
        case "query-hostile": {
          const param = pick(route.query)!;
          const index = query.findIndex(([k]) => k === param.name);
          if (index >= 0) query.splice(index, 1);
          query.push([param.name, c.hostileQuery]);
          note = `query ${param.name}=${c.hostileQuery.slice(0, 60)}`;
          break;
        }
        case "query-unknown":
          query.push([encodeURIComponent(c.extraKey) || "x", c.hostileQuery]);
          note = `unknown query ${c.extraKey.slice(0, 20)}`;
          break;
        case "query-repeated": {
          const name = pick(route.query)?.name ?? "limit";
          query.push([name, "1"], [name, "2"]);
          note = `repeated query ${name}`;
          break;
        }
        case "query-missing": {
          const param = pick(route.query.filter((q) => q.required))!;
          const index = query.findIndex(([k]) => k === param.name);
          if (index >= 0) query.splice(index, 1);
          note = `missing query ${param.name}`;
          break;
        }
        case "body-field": {
          const object = isPlainObject(body) ? { ...body } : {};
          const keys = Object.keys(route.body?.properties ?? {});
          const key = pick(keys) ?? "name";
          object[key] = c.hostile;
          body = object;
          note = `body.${key} hostile`;
          break;
        }
        case "body-missing": {
          const object = isPlainObject(body) ? { ...body } : {};
          const key = pick(route.body?.required ?? Object.keys(object));
          if (key !== undefined) delete object[key];
          body = object;
          note = `body missing ${key ?? "(nothing)"}`;
          break;
        }
        case "body-extra": {
          const object = isPlainObject(body) ? { ...body } : {};
          Object.defineProperty(object, c.extraKey, {
            value: c.hostile,
            enumerable: true,
            writable: true,
            configurable: true,
          });
          body = object;
          note = `body extra ${JSON.stringify(c.extraKey)}`;
          break;
        }
        case "body-proto": {
          const text = JSON.stringify(isPlainObject(body) ? body : {});
          const pollution = pick(PROTO_JSON)!.slice(1, -1);
          payload = text === "{}" ? `{${pollution}}` : `{${pollution},${text.slice(1)}`;
          note = `body with ${pollution.slice(0, 20)}`;
          break;
        }
        case "body-top":
          body = c.hostile;
          note = "body not an object";
          break;
        case "body-raw":
          payload = c.raw.payload;
          note = c.raw.label;
          break;
        case "content-type":
          headers["content-type"] = c.contentType;
          note = `content-type ${JSON.stringify(c.contentType)}`;
          break;
        case "auth":
          headers = { ...c.badAuth };
          note = `auth ${JSON.stringify(c.badAuth).slice(0, 40)}`;
          break;
      }

      if (payload === undefined && (route.body || c.mutation === "content-type") && body !== undefined) {
        payload = JSON.stringify(body);
      }
      if (payload !== undefined && headers["content-type"] === undefined)
        headers["content-type"] = "application/json";
      if (headers["content-type"] === "") delete headers["content-type"];
      const search = query.map(([k, v]) => `${k}=${v}`).join("&");
      const url = fill(route.template, path) + (search ? `?${search}` : "");
      return {
        method: route.method,
        url,
        headers,
        ...(payload === undefined ? {} : { payload }),
        mutation: note,
      };
    });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
