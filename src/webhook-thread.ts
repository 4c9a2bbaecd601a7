/**
 * The webhook delivery thread (jobs/webhook-thread.ts explains why): a
 * WebhookWorker on a SQLite connection of its own, rendering events as the
 * native surface does. A composition root like app.ts, so it may wire a job
 * to a surface's representation.
 */
import { parentPort, workerData } from "node:worker_threads";
import { eventBody } from "./http/native/event-representation.ts";
import type { FromWebhookThread, ToWebhookThread, WebhookThreadData } from "./jobs/webhook-thread.ts";
import { WebhookWorker } from "./jobs/webhook-worker.ts";
import { createSqliteStore } from "./store/store.ts";

const port = parentPort;
if (!port) throw new Error("webhook-thread runs as a worker thread");
const data = workerData as WebhookThreadData;
const post = (message: FromWebhookThread) => port.postMessage(message);

const store = createSqliteStore(data.sqliteFile);
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
  log: { info: logAt("info"), warn: logAt("warn"), error: logAt("error") },
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
