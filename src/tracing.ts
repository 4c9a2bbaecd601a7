import { readFileSync } from "node:fs";
import { join } from "node:path";
import { FastifyOtelInstrumentation } from "@fastify/otel";
import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { detectResources, envDetector, resourceFromAttributes } from "@opentelemetry/resources";
import {
  BatchSpanProcessor,
  ConsoleSpanExporter,
  NodeTracerProvider,
  type SpanExporter,
} from "@opentelemetry/sdk-trace-node";
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from "@opentelemetry/semantic-conventions";
import type { FastifyPluginCallback, FastifyRequest } from "fastify";
import { PACKAGE_ROOT, type TracingConfig } from "./config.ts";
import { loggedUrl } from "./logger.ts";
import { operationOf } from "./metrics.ts";
import type { QueryEvent, Store } from "./store/store.ts";

/**
 * Optional OpenTelemetry tracing (docs/operations.md, "Tracing"). This module
 * is imported (dynamically, by src/app.ts) only when tracing is configured, so
 * a server without it never loads the SDK. Spans: one per request (by
 * @fastify/otel: the route pattern, method, status; W3C `traceparent` from the
 * caller is continued), one for its handler, and one per store statement run
 * inside a request (operation, dialect, the SQL with its placeholders, never
 * the values).
 */
export interface Tracing {
  /** Registers request spans on the app; register it before any route. */
  readonly plugin: FastifyPluginCallback;
  /** Flushes the spans still queued and stops the exporter (the app's close). */
  shutdown(): Promise<void>;
}

/** Paths never traced: probes and scrapes, polled every few seconds. */
const UNTRACED = new Set(["/metrics", "/v1/health", "/v1/ready"]);

/** The longest SQL text kept on a span (a batch insert's can be hundreds of kilobytes). */
const SQL_TEXT_MAX = 2048;

const VERSION = (JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")) as { version: string })
  .version;

export function startTracing(config: TracingConfig, store: Store): Tracing {
  const exporter: SpanExporter =
    config.exporter === "console" ? new ConsoleSpanExporter() : new OTLPTraceExporter({ url: config.url });
  const provider = new NodeTracerProvider({
    // OTEL_RESOURCE_ATTRIBUTES first; the service's own name and version over them.
    resource: detectResources({ detectors: [envDetector] }).merge(
      resourceFromAttributes({ [ATTR_SERVICE_NAME]: config.serviceName, [ATTR_SERVICE_VERSION]: VERSION }),
    ),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  // The global provider, the AsyncLocalStorage context manager and the W3C
  // trace-context propagator: @fastify/otel and the store spans use them.
  provider.register();

  const instrumentation = new FastifyOtelInstrumentation({
    // Hook spans (a dozen per request) cost more than they tell; the handler's is kept.
    instrumentHooks: false,
    instrumentHandler: true,
    // Exception messages may quote what a client sent; the status and code say enough.
    recordExceptions: false,
    ignorePaths: (route) => UNTRACED.has(route.url.split("?")[0] ?? route.url),
    requestHook: (span, request) => describeRequest(span, request),
  });
  instrumentation.setTracerProvider(provider);

  const tracer = provider.getTracer("phonebook-store", VERSION);
  const dbSystem = store.dialect === "postgres" ? "postgresql" : "sqlite";
  const stopObserving = store.observeQueries((event: QueryEvent) => {
    const parent = context.active();
    // Statements outside a request (background jobs) would each be a trace of their own.
    if (trace.getSpan(parent) === undefined) return;
    const end = performance.timeOrigin + performance.now();
    const operation = operationOf(event.sql);
    const span = tracer.startSpan(
      `${operation} ${dbSystem}`,
      {
        kind: SpanKind.CLIENT,
        startTime: end - event.durationMs,
        attributes: {
          "db.system.name": dbSystem,
          "db.operation.name": operation,
          "db.query.text":
            event.sql.length > SQL_TEXT_MAX ? `${event.sql.slice(0, SQL_TEXT_MAX)}…` : event.sql,
        },
      },
      parent,
    );
    if (event.failed) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end(end);
  });

  return {
    plugin: instrumentation.plugin(),
    async shutdown() {
      stopObserving();
      await provider.shutdown();
    },
  };
}

/**
 * A request span named `METHOD /route/{pattern}` (OpenTelemetry's HTTP server
 * convention); `url.path` without the query, and the query with its values
 * redacted as the request log does (they carry names and phones people search for).
 */
function describeRequest(
  span: { updateName(name: string): unknown; setAttribute(key: string, value: string): unknown },
  request: FastifyRequest,
): void {
  const route = request.routeOptions.url;
  span.updateName(route ? `${request.method} ${route}` : request.method);
  const at = request.url.indexOf("?");
  span.setAttribute("url.path", at === -1 ? request.url : request.url.slice(0, at));
  if (at !== -1) span.setAttribute("url.query", loggedUrl(request.url).slice(at + 1));
}
