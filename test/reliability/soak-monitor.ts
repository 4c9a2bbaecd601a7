/**
 * Loaded into the soak's server process with `--import` (before the CLI):
 * measures event-loop delay (perf_hooks.monitorEventLoopDelay) and memory,
 * and reports one sample per interval to the parent over IPC. The server
 * itself is the real one, unchanged.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";

export interface SoakSample {
  /** ms since the monitor started */
  t: number;
  rss: number;
  heapUsed: number;
  /** Longest event-loop delay in the interval, ms. */
  eldMaxMs: number;
  eldP99Ms: number;
}

if (typeof process.send === "function") {
  const interval = Number(process.env.PB_SOAK_SAMPLE_MS ?? 1000);
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  const start = Date.now();
  const timer = setInterval(() => {
    const memory = process.memoryUsage();
    const sample: SoakSample = {
      t: Date.now() - start,
      rss: memory.rss,
      heapUsed: memory.heapUsed,
      eldMaxMs: histogram.max / 1e6,
      eldP99Ms: histogram.percentile(99) / 1e6,
    };
    histogram.reset();
    process.send?.({ soakSample: sample });
  }, interval);
  timer.unref();
  // The IPC channel keeps the process alive otherwise; the server's own handles keep it running.
  process.channel?.unref();
}
