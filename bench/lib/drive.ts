import { performance } from "node:perf_hooks";
import autocannon, { type AutocannonResult } from "autocannon";
import { cpuSecondsOf, mainThreadCpuSecondsOf, rssSampler } from "./servers.ts";

/** One HTTP request of a scenario. */
export interface RequestSpec {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface LoadOptions {
  connections: number;
  /** Seconds measured. */
  duration: number;
  /** Seconds of load before measuring (JIT, caches, connection pools), discarded. */
  warmup: number;
}

/** What one target did under load. */
export interface LoadResult {
  requests: number;
  seconds: number;
  rps: number;
  /** Milliseconds, from every response (autocannon's own histogram has 1 ms resolution). */
  p50: number;
  p99: number;
  /** Connection errors + timeouts + non-2xx responses. */
  errors: number;
  statusCodes: Record<string, number>;
  peakRssBytes: number;
  /**
   * CPU time the serving process used per request, in µs (the harness process
   * itself for the floor; in-process servers share it with autocannon).
   */
  cpuMicrosPerRequest: number;
  /** The server's main thread only (without worker threads), when measured. */
  mainThreadCpuMicrosPerRequest?: number;
  /** The load generator's (this process's) CPU over the measurement, as a share of one core. */
  clientCpuShare?: number;
  /** The first failure's message (floor only: HTTP failures are counted by status). */
  firstError?: string;
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function oneRun(
  url: string,
  next: () => RequestSpec,
  connections: number,
  duration: number,
  record: boolean,
): Promise<{ latencies: number[]; result: AutocannonResult } | undefined> {
  const latencies: number[] = [];
  const instance = autocannon({
    url,
    connections,
    duration,
    timeout: 30,
    requests: [
      {
        setupRequest: (request) => {
          const spec = next();
          return {
            ...request,
            method: spec.method,
            path: spec.path,
            headers: {
              ...spec.headers,
              ...(spec.body === undefined ? {} : { "content-type": "application/json" }),
            },
            body: spec.body,
          };
        },
      },
    ],
  });
  if (record) {
    instance.on("response", (_client: unknown, _status: number, _bytes: number, responseTime: number) => {
      latencies.push(responseTime);
    });
  }
  const result = await instance;
  return { latencies, result };
}

/** Drives `url` with autocannon: a warm-up, then `duration` seconds measured. */
export async function driveHttp(
  url: string,
  next: () => RequestSpec,
  options: LoadOptions,
  servedBy: number,
): Promise<LoadResult> {
  if (options.warmup > 0) await oneRun(url, next, options.connections, options.warmup, false);
  // A measurement in which no response arrived (a short --duration, a slow
  // request on a loaded machine: autocannon does not count one still in
  // flight when time is up) is measured again for twice as long, up to 64 s.
  let duration = options.duration;
  for (;;) {
    const rss = rssSampler(servedBy);
    const cpuBefore = cpuSecondsOf(servedBy);
    const mainBefore = mainThreadCpuSecondsOf(servedBy);
    const clientBefore = process.cpuUsage();
    const clientStart = performance.now();
    const run = await oneRun(url, next, options.connections, duration, true);
    const client = process.cpuUsage(clientBefore);
    const clientCpuShare = (client.user + client.system) / 1000 / (performance.now() - clientStart);
    const cpu = cpuSecondsOf(servedBy) - cpuBefore;
    const mainCpu = mainThreadCpuSecondsOf(servedBy) - mainBefore;
    const peakRssBytes = rss.stop();
    if (run!.latencies.length === 0 && duration < 64) {
      duration = Math.min(64, duration * 2);
      continue;
    }
    return {
      ...loadResult(run!, cpu, peakRssBytes),
      mainThreadCpuMicrosPerRequest: (mainCpu * 1e6) / run!.latencies.length,
      clientCpuShare,
    };
  }
}

function loadResult(
  run: { latencies: number[]; result: AutocannonResult },
  cpu: number,
  peakRssBytes: number,
): LoadResult {
  const { result, latencies } = run;
  const sorted = Float64Array.from(latencies).sort();
  const statusCodes = Object.fromEntries(
    Object.entries(result.statusCodeStats).map(([code, { count }]) => [code, Number(count)]),
  );
  const responses = latencies.length;
  return {
    requests: responses,
    seconds: result.duration,
    rps: responses / result.duration,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    errors: result.errors + result.timeouts + result.non2xx,
    statusCodes,
    peakRssBytes,
    cpuMicrosPerRequest: (cpu * 1e6) / responses,
  };
}

/**
 * The floor: the scenario's store work called in-process, `concurrency`
 * calls in flight (1 on SQLite, whose driver is synchronous: more would only
 * queue), for `duration` seconds after a warm-up.
 */
export async function driveFloor(
  call: () => Promise<unknown>,
  options: { concurrency: number; duration: number; warmup: number },
): Promise<LoadResult> {
  type Errors = { n: number; first?: string };
  const loop = async (until: number, latencies: number[] | undefined, errors: Errors) => {
    while (performance.now() < until) {
      const start = performance.now();
      try {
        await call();
      } catch (error) {
        errors.n += 1;
        errors.first ??= (error as Error).message;
      }
      latencies?.push(performance.now() - start);
    }
  };
  const runFor = async (seconds: number, latencies: number[] | undefined, errors: Errors) => {
    const until = performance.now() + seconds * 1000;
    await Promise.all(Array.from({ length: options.concurrency }, () => loop(until, latencies, errors)));
  };
  await runFor(options.warmup, undefined, { n: 0 });
  const latencies: number[] = [];
  const errors: Errors = { n: 0 };
  const rss = rssSampler(process.pid);
  const cpuBefore = cpuSecondsOf(process.pid);
  const start = performance.now();
  await runFor(options.duration, latencies, errors);
  const seconds = (performance.now() - start) / 1000;
  const cpu = cpuSecondsOf(process.pid) - cpuBefore;
  const sorted = Float64Array.from(latencies).sort();
  return {
    requests: latencies.length,
    seconds,
    rps: latencies.length / seconds,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    errors: errors.n,
    statusCodes: {},
    peakRssBytes: rss.stop(),
    cpuMicrosPerRequest: (cpu * 1e6) / latencies.length,
    ...(errors.first === undefined ? {} : { firstError: errors.first }),
  };
}
