import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { buildApp } from "../src/app.ts";
import { ConfigError, loadConfig } from "../src/config.ts";
import { storeKinds } from "./helpers/env.ts";
import { createTestStore, seedOrganization } from "./helpers/harness.ts";
import { startServerProcess } from "./helpers/server-process.ts";

/**
 * The OpenTelemetry SDK modules loaded in this process (ESM imports of
 * CommonJS packages land in the require cache). `@opentelemetry/api`, the
 * no-op API, is left out: prom-client always loads it.
 */
function sdkModulesLoaded(): string[] {
  const cache = createRequire(import.meta.url).cache;
  return Object.keys(cache).filter(
    (path) =>
      /[\\/]node_modules[\\/](@opentelemetry|@fastify[\\/]otel)[\\/]/.test(path) &&
      !/[\\/]@opentelemetry[\\/]api[\\/]/.test(path),
  );
}

describe("tracing configuration", () => {
  test("off by default and with OTEL_TRACES_EXPORTER=none or OTEL_SDK_DISABLED; on with an endpoint", () => {
    assert.equal(loadConfig({}).tracing, undefined);
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/" };
    assert.deepEqual(loadConfig(endpoint).tracing, {
      exporter: "otlp",
      url: "http://collector:4318/v1/traces",
      serviceName: "phonebook",
    });
    assert.equal(
      loadConfig({ ...endpoint, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://x.example/traces" }).tracing
        ?.url,
      "https://x.example/traces",
    );
    assert.equal(loadConfig({ ...endpoint, OTEL_TRACES_EXPORTER: "none" }).tracing, undefined);
    assert.equal(loadConfig({ ...endpoint, OTEL_SDK_DISABLED: "true" }).tracing, undefined);
    assert.deepEqual(loadConfig({ OTEL_TRACES_EXPORTER: "otlp", OTEL_SERVICE_NAME: "contacts" }).tracing, {
      exporter: "otlp",
      url: "http://localhost:4318/v1/traces",
      serviceName: "contacts",
    });
    assert.equal(loadConfig({ OTEL_TRACES_EXPORTER: "console" }).tracing?.exporter, "console");
    assert.equal(
      loadConfig({ ...endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" }).tracing?.exporter,
      "otlp",
    );
  });

  test("values it cannot honour stop the start, naming the variable", () => {
    for (const [env, variable] of [
      [{ OTEL_TRACES_EXPORTER: "zipkin" }, "OTEL_TRACES_EXPORTER"],
      [{ OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" }, "OTEL_EXPORTER_OTLP_ENDPOINT"],
      [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "grpc://collector:4317" }, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"],
      [
        { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" },
        "OTEL_EXPORTER_OTLP_PROTOCOL",
      ],
      [{ OTEL_SDK_DISABLED: "maybe" }, "OTEL_SDK_DISABLED"],
    ] as const) {
      assert.throws(
        () => loadConfig(env),
        (error: unknown) => error instanceof ConfigError && error.variable === variable,
        JSON.stringify(env),
      );
    }
  });

  test("off, a server never loads the OpenTelemetry SDK", async () => {
    const store = await createTestStore("sqlite");
    try {
      const app = await buildApp(loadConfig({ LOG_LEVEL: "silent", ...store.env }), {
        store: store.store,
        jobs: false,
      });
      await app.ready();
      const res = await app.inject({ method: "GET", url: "/v1/health" });
      assert.equal(res.statusCode, 200);
      await app.close();
      assert.deepEqual(sdkModulesLoaded(), []);
      // The check sees the SDK once something imports it (what src/app.ts does when tracing is on).
      await import("../src/tracing.ts");
      assert.ok(sdkModulesLoaded().some((path) => path.includes("sdk-trace")));
    } finally {
      await store.drop();
    }
  });
});

/** An OTLP/HTTP (JSON) receiver: what a collector's port 4318 does, keeping the spans. */
interface Receiver {
  url: string;
  spans: ReceivedSpan[];
  requests: number;
  close(): Promise<void>;
}

interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
  resource: Record<string, unknown>;
}

type OtlpAttribute = { key: string; value: Record<string, unknown> };

function attributesOf(list: OtlpAttribute[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of list ?? []) out[key] = Object.values(value)[0];
  return out;
}

async function startReceiver(): Promise<Receiver> {
  const receiver: Receiver = { url: "", spans: [], requests: 0, close: async () => {} };
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      receiver.requests += 1;
      if (request.method !== "POST" || request.url !== "/v1/traces") {
        response.writeHead(404).end();
        return;
      }
      assert.match(String(request.headers["content-type"]), /application\/json/);
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      for (const resourceSpans of body.resourceSpans ?? []) {
        const resource = attributesOf(resourceSpans.resource?.attributes);
        for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
          for (const span of scopeSpans.spans ?? []) {
            receiver.spans.push({
              traceId: span.traceId,
              spanId: span.spanId,
              parentSpanId: span.parentSpanId ?? "",
              name: span.name,
              kind: span.kind,
              attributes: attributesOf(span.attributes),
              resource,
            });
          }
        }
      }
      response.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  receiver.close = () => new Promise((resolve) => server.close(() => resolve()));
  return receiver;
}

/** Waits (generously: it only catches a hang) until `found` sees what it needs among the received spans. */
async function waitForSpans<T>(
  receiver: Receiver,
  found: (spans: ReceivedSpan[]) => T | undefined,
): Promise<T> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const value = found(receiver.spans);
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      throw new Error(`spans not received: ${JSON.stringify(receiver.spans.map((s) => s.name))}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

for (const kind of storeKinds()) {
  describe(`tracing: a real server sends its spans to an OTLP/HTTP receiver [${kind}]`, () => {
    let receiver: Receiver;
    before(async () => {
      receiver = await startReceiver();
    });
    after(async () => {
      await receiver.close();
    });

    test("request spans by route continue the caller's trace; store statements are their children; probes and query values stay out", async () => {
      const testStore = await createTestStore(kind);
      await testStore.store.migrate();
      const seeded = await seedOrganization(testStore.store.db, {
        name: "Traced Co",
        phoneNumberId: "106540352247001",
        phoneNumber: "+628111777001",
      });
      const server = await startServerProcess({
        ...testStore.env,
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_SERVICE_NAME: "phonebook-under-test",
        OTEL_RESOURCE_ATTRIBUTES: "deployment.environment.name=test",
        OTEL_BSP_SCHEDULE_DELAY: "100",
      });
      try {
        const traceId = randomBytes(16).toString("hex");
        const parentId = randomBytes(8).toString("hex");
        const headers = { ...seeded.auth, traceparent: `00-${traceId}-${parentId}-01` };
        const health = await fetch(`${server.url}/v1/health`);
        assert.equal(health.status, 200);
        const created = await fetch(`${server.url}/v1/contacts`, {
          method: "POST",
          headers: { ...headers, "content-type": "application/json" },
          body: JSON.stringify({ phone_number: "+628111777002", name: "Ani Traced" }),
        });
        assert.equal(created.status, 201, await created.text());
        const listed = await fetch(`${server.url}/v1/contacts?search=ani&limit=5`, { headers });
        assert.equal(listed.status, 200);

        const [post, list] = await waitForSpans(receiver, (spans) => {
          const post = spans.find((s) => s.traceId === traceId && s.name === "POST /v1/contacts");
          const list = spans.find((s) => s.traceId === traceId && s.name === "GET /v1/contacts");
          return post && list ? [post, list] : undefined;
        });
        // Server spans continuing the caller's trace (W3C traceparent).
        for (const span of [post, list]) {
          assert.equal(span.parentSpanId, parentId);
          assert.equal(span.kind, 2, "SPAN_KIND_SERVER");
          assert.equal(span.resource["service.name"], "phonebook-under-test");
          assert.equal(span.resource["deployment.environment.name"], "test");
          assert.equal(span.resource["service.version"], "0.1.0");
          assert.equal(span.attributes["http.route"], "/v1/contacts");
        }
        assert.equal(post.attributes["http.response.status_code"], 201);
        assert.equal(list.attributes["url.path"], "/v1/contacts");
        // What people search for stays out of traces, as out of logs.
        assert.equal(list.attributes["url.query"], "search=[redacted]&limit=5");
        assert.ok(!JSON.stringify(receiver.spans).includes("ani&"), "no raw query anywhere");

        // The store's statements of the POST: children within the same trace.
        const dbSystem = kind === "postgres" ? "postgresql" : "sqlite";
        const inserts = await waitForSpans(receiver, (spans) => {
          const ids = new Set([post.spanId]);
          // The handler span sits between the request and its statements.
          for (const s of spans)
            if (s.traceId === traceId && s.parentSpanId === post.spanId) ids.add(s.spanId);
          const found = spans.filter(
            (s) =>
              s.traceId === traceId &&
              ids.has(s.parentSpanId) &&
              s.attributes["db.system.name"] === dbSystem &&
              s.attributes["db.operation.name"] === "insert",
          );
          return found.length > 0 ? found : undefined;
        });
        for (const span of inserts) {
          assert.equal(span.kind, 3, "SPAN_KIND_CLIENT");
          assert.match(String(span.attributes["db.query.text"]), /insert into/i);
          assert.ok(
            !String(span.attributes["db.query.text"]).includes("+628111777002"),
            "values are bound, not in the SQL",
          );
        }
        // Probes are not traced.
        assert.ok(
          !receiver.spans.some(
            (s) => s.attributes["url.path"] === "/v1/health" || s.name.includes("/v1/health"),
          ),
        );
      } finally {
        await server.kill("SIGTERM");
        await testStore.drop();
      }
    });
  });
}
