import v8 from "node:v8";
import type { FastifyInstance } from "fastify";
import { buildApp } from "./app.ts";
import { type Config, describeStore } from "./config.ts";
import { bootstrapIfEmpty } from "./domain/bootstrap.ts";
import { listenMetrics } from "./metrics.ts";

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  /** Stops accepting connections, lets in-flight requests finish, closes the store. */
  stop(): Promise<void>;
}

/** Builds the app, bootstraps an empty store, listens, and stops gracefully on SIGTERM/SIGINT. */
export async function startServer(
  config: Config,
  io: { print: (line: string) => void; json: boolean } = { print: console.log, json: false },
): Promise<RunningServer> {
  limitHeapGrowth(config.heapGrowthPercent);
  const app = await buildApp(config);
  const first = await bootstrapIfEmpty(app.services.store);
  if (first) {
    if (io.json) {
      io.print(
        JSON.stringify({
          organization_id: first.organizationId,
          api_key: first.apiKey.key,
          key_id: first.apiKey.row.id,
        }),
      );
    } else {
      io.print(
        [
          "",
          "  First run: created an organization and an API key. The key is shown only this once:",
          "",
          `    ${first.apiKey.key}`,
          "",
          `  Try: curl -H "Authorization: Bearer ${first.apiKey.key}" http://${config.host}:${config.port}/v1/me`,
          "",
        ].join("\n"),
      );
    }
  }
  // Bodies are timed per pause and in total by the transport guards (a file
  // import lives as long as its bytes keep flowing; the runner sweeps pieces of
  // unfinished uploads after an hour); headers by HTTP_HEADERS_TIMEOUT_MS.
  app.server.keepAliveTimeout = 65_000;
  // Connections past this many are refused at once, so slow clients cannot
  // take every file descriptor of the process.
  app.server.maxConnections = config.httpMaxConnections;
  let url: string;
  try {
    url = await app.listen({ port: config.port, host: config.host });
  } catch (error) {
    // A port in use: close what was opened (store, jobs, Redis) so the process can exit.
    await app.close().catch(() => {});
    throw error;
  }
  app.log.info({ store: describeStore(config) }, `store: ${describeStore(config)}`);
  // METRICS_PORT: GET /metrics on its own listener (and not on the API port).
  const metricsServer =
    app.metrics && config.metricsPort !== undefined
      ? await listenMetrics(app.metrics, {
          port: config.metricsPort,
          host: config.metricsHost,
          token: config.metricsToken,
        })
      : undefined;
  if (metricsServer) app.log.info(`Metrics listening at ${metricsServer.url}/metrics`);

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      app.log.info("shutting down: no new connections, finishing in-flight requests");
      await Promise.all([app.close(), metricsServer?.close()]);
    })();
    return stopping;
  };
  const onSignal = (signal: NodeJS.Signals) => {
    app.log.info({ signal }, "signal received");
    stop().then(
      () => process.exit(0),
      (error) => {
        app.log.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
  return { app, url, stop };
}

/**
 * How far V8 lets the heap grow past what its last full collection kept
 * (HEAP_GROWTH_PERCENT, see Config). V8 reads this flag whenever it sets the
 * next collection's limit, so setting it at start is enough. A heap flag the
 * operator passed (`--heap-growing-percent` in NODE_OPTIONS or on the
 * command line) wins.
 */
export function limitHeapGrowth(percent: number): void {
  if (percent <= 0) return;
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? "").split(/\s+/)];
  if (given.some((arg) => /^--heap[-_]growing[-_]percent/.test(arg))) return;
  v8.setFlagsFromString(`--heap-growing-percent=${percent}`);
}
