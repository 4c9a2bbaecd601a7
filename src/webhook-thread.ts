/**
 * The webhook delivery thread (jobs/webhook-thread.ts explains why): a
 * WebhookWorker on a store connection of its own, rendering events as the
 * native surface does. A composition root like app.ts, so it may wire a job
 * to a surface's representation.
 */
import { readlinkSync } from "node:fs";
import { getPriority, setPriority } from "node:os";
import { parentPort, workerData } from "node:worker_threads";
import { eventBody } from "./http/native/event-representation.ts";
import type { FromWebhookThread, ToWebhookThread, WebhookThreadData } from "./jobs/webhook-thread.ts";
import { WebhookWorker } from "./jobs/webhook-worker.ts";
import { openStoreAt } from "./store/store.ts";

const port = parentPort;
if (!port) throw new Error("webhook-thread runs as a worker thread");
const data = workerData as WebhookThreadData;
const post = (message: FromWebhookThread) => port.postMessage(message);

/**
 * The thread yields the CPU to the API: on Linux its own scheduling priority
 * is lowered by 10 (nice; a thread's id is in /proc/thread-self). When the
 * cores are busy, requests are answered first and deliveries take what is
 * left (their lag grows, the API's latency does not); on an idle core it
 * makes no difference. Elsewhere the thread keeps the process's priority.
 */
function yieldToTheApi(): void {
  try {
    const tid = Number(readlinkSync("/proc/thread-self").split("/").pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, Math.min(19, getPriority(tid) + 10));
  } catch {
    // Not Linux, or not allowed: the same priority as the API.
  }
}
yieldToTheApi();

// PostgreSQL: two connections (the worker's steps run one at a time, and the sweep).
const store = openStoreAt(data.store, 2);
const logAt =
  (level: "info" | "warn" | "error") =>
  (obj: object, msg?: string): void =>
    post({ type: "log", level, obj, msg });

// First-attempt lags go back in batches (metrics), at most every 100 ms.
let lags: number[] = [];
let flushTimer: NodeJS.Timeout | undefined;
const flushLags = () => {
  flushTimer = undefined;
  if (lags.length === 0) return;
  post({ type: "lags", values: lags });
  lags = [];
};

const worker = new WebhookWorker(store, eventBody, {
  ...data.options,
  ...(data.store.kind === "postgres" && { listenUrl: data.listenUrl, notifyUrl: data.store.url }),
  log: { info: logAt("info"), warn: logAt("warn"), error: logAt("error") },
  // The listener's health goes to the main thread (WebhookThread.listening).
  onListenerHealth: (healthy: boolean) => post({ type: "listening", healthy }),
  ...(data.observeLag && {
    onDelivered: (lagMs: number) => {
      lags.push(lagMs);
      flushTimer ??= setTimeout(flushLags, 100);
    },
  }),
});

port.on("message", (message: ToWebhookThread) => {
  if (message.type === "wake") {
    worker.notify();
    return;
  }
  void (async () => {
    await worker.stop();
    clearTimeout(flushTimer);
    flushLags();
    await store.close();
    post({ type: "stopped" });
    port.close();
  })();
});
worker.start();
