import type { Worker } from "node:worker_threads";
import { onEventsCommitted } from "../domain/events.ts";
import type { StoreAddress } from "../store/store.ts";
import type { RunnerLog } from "./import-runner.ts";
import type { WebhookWorkerOptions } from "./webhook-worker.ts";

/**
 * The webhook worker in a thread of its own.
 *
 * Delivering an event costs the process ~130–250 µs of CPU (claiming and
 * recording it in the store, rendering and signing the body, the HTTP
 * exchange). In the API's thread, at 1,000 events a second, that is a fifth
 * of the core that serves requests. In a worker thread, with a store
 * connection of its own, the API's thread keeps only the writing of events,
 * and the delivery runs on another core:
 * - SQLite: a connection of its own on the same file (WAL: its reads never
 *   wait; its short write transactions take turns with the API's under
 *   busy_timeout). The thread starts with the first work (a process whose
 *   organisations have no endpoint never starts it).
 * - PostgreSQL: a pool of its own (two connections) and the LISTEN
 *   connection. The thread starts with the app, since other processes may
 *   queue deliveries at any time and their NOTIFY is heard in the thread.
 *
 * The thread is the same WebhookWorker (jobs/webhook-worker.ts): leases,
 * order per contact, retries and disabling are unchanged, and since every
 * delivery lives in the store, a thread that dies loses nothing: it is
 * started again and its leases expire as a crashed process's would.
 */

/** Worker options that cross to the thread (no functions). */
export type ThreadWorkerOptions = Pick<
  WebhookWorkerOptions,
  | "pollMs"
  | "leaseMs"
  | "concurrency"
  | "retryScheduleMs"
  | "jitter"
  | "timeoutMs"
  | "allowPrivate"
  | "disableAfterMs"
  | "retentionMs"
  | "maxRetryAfterMs"
>;

/** What the thread starts with (its workerData). */
export interface WebhookThreadData {
  /** The API's store, opened by the thread on connections of its own. */
  store: StoreAddress;
  /** PostgreSQL: LISTEN here for other processes' deliveries (WEBHOOKS_LISTEN_URL; none when off). */
  listenUrl: string | undefined;
  options: ThreadWorkerOptions;
  /** Post each first-attempt success's lag back (metrics). */
  observeLag: boolean;
}

export type ToWebhookThread = { type: "wake" } | { type: "stop" };
export type FromWebhookThread =
  | { type: "log"; level: "info" | "warn" | "error"; obj: object; msg: string | undefined }
  | { type: "lags"; values: number[] }
  | { type: "listening"; healthy: boolean }
  | { type: "stopped" };

export interface WebhookThreadOptions {
  log: RunnerLog;
  onDelivered?: ((lagMs: number) => void) | undefined;
  /** Wait before starting a thread again after it died (ms; default 1 s). */
  restartMs?: number;
  /** Longest a stop waits for the attempts in flight before ending the thread (ms). */
  stopTimeoutMs: number;
  /**
   * Whether the store holds work for the worker (pending deliveries, events
   * past their retention). The thread is started when there is, asked at
   * start and every `checkMs`, or at the first wake: a process whose
   * organisations have no endpoint does not start it until events are to be
   * swept.
   */
  hasWork: () => Promise<boolean>;
  /** How often an idle process asks `hasWork` (ms; default 10 minutes). */
  checkMs?: number;
}

/** The main thread's side: starts the thread, wakes it on commits, restarts it if it dies, stops it. */
export class WebhookThread {
  private thread: Worker | undefined;
  private exited: Promise<void> = Promise.resolve();
  private stopping = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private unlisten: (() => void) | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  private listenerHealthy = false;
  /** Threads started (the first and each restart). */
  starts = 0;

  /** `spawn` starts the thread module (src/webhook-thread.ts) with its WebhookThreadData. */
  constructor(
    private readonly spawn: () => Worker,
    private readonly options: WebhookThreadOptions,
  ) {}

  start(): void {
    if (this.unlisten) return;
    this.stopping = false;
    // A commit of this thread that queued deliveries wakes the delivery thread at once.
    this.unlisten = onEventsCommitted(() => this.notify());
    const check = () => {
      if (this.thread || this.stopping) return;
      this.options.hasWork().then(
        (yes) => {
          if (yes) this.notify();
        },
        // Cannot tell: start it, it polls.
        () => this.notify(),
      );
    };
    check();
    this.checkTimer = setInterval(check, this.options.checkMs ?? 10 * 60 * 1000);
    this.checkTimer.unref();
  }

  private launch(): void {
    this.restartTimer = undefined;
    const thread = this.spawn();
    this.thread = thread;
    this.starts++;
    const { log } = this.options;
    thread.on("message", (message: FromWebhookThread) => {
      if (message.type === "log") log[message.level](message.obj, message.msg);
      else if (message.type === "lags") for (const lag of message.values) this.options.onDelivered?.(lag);
      else if (message.type === "listening") this.listenerHealthy = message.healthy;
      // Its work is recorded and its connection closed: end it even if a kept-alive socket would hold it.
      else if (message.type === "stopped") void thread.terminate();
    });
    thread.on("error", (error) => log.error({ err: error }, "webhook thread failed"));
    this.exited = new Promise((resolve) => {
      thread.once("exit", (code) => {
        if (this.thread === thread) this.thread = undefined;
        this.listenerHealthy = false;
        resolve();
        if (this.stopping) return;
        log.error({ code }, "webhook thread exited; starting it again");
        this.restartTimer = setTimeout(() => this.launch(), this.options.restartMs ?? 1000);
      });
    });
  }

  /** There may be new work: the thread looks now instead of at its next poll. */
  notify(): void {
    if (this.stopping || this.restartTimer) return;
    if (!this.thread) {
      if (this.unlisten) this.launch(); // started and not stopped: the first work starts the thread
      return;
    }
    this.thread.postMessage({ type: "wake" } satisfies ToWebhookThread);
  }

  /** Stops claiming; waits for the attempts in flight to be recorded, then ends the thread. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.unlisten?.();
    this.unlisten = undefined;
    clearInterval(this.checkTimer);
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const thread = this.thread;
    if (!thread) return;
    thread.postMessage({ type: "stop" } satisfies ToWebhookThread);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), this.options.stopTimeoutMs);
    });
    const outcome = await Promise.race([this.exited, late]);
    clearTimeout(timer);
    if (outcome === "late") {
      // Whatever it held is sent again when its leases expire.
      this.options.log.warn({}, "webhook thread did not stop in time; ending it");
      await thread.terminate();
    }
    this.thread = undefined;
  }

  /** The running thread, if any (tests, diagnostics). */
  get current(): Worker | undefined {
    return this.thread;
  }

  /** Whether the thread's PostgreSQL listener is connected and its notifications arrive (as the thread last said). */
  get listening(): boolean {
    return this.listenerHealthy;
  }
}
