import { randomBytes } from "node:crypto";
import { DEFAULT_RETRY_SCHEDULE_MS } from "../config.ts";
import { now } from "../domain/clock.ts";
import { newDelivery, onEventsCommitted, recordEvents } from "../domain/events.ts";
import { signatureHeaders } from "../domain/webhook-signing.ts";
import * as repo from "../store/repositories/webhooks.ts";
import type { Store, Tx } from "../store/store.ts";
import { Idle } from "./idle.ts";
import type { RunnerLog } from "./import-runner.ts";
import { type SendResult, sendWebhook } from "./webhook-http.ts";
import { DeliveryListener } from "./webhook-listener.ts";

export interface WebhookWorkerOptions {
  /** How often an idle worker looks for due deliveries (ms). */
  pollMs?: number;
  /** How long a claim lasts (ms); a worker that dies releases its deliveries after this. */
  leaseMs?: number;
  /** Deliveries in flight at once per process. */
  concurrency?: number;
  /** Delay before each attempt (ms); its length is the number of attempts. */
  retryScheduleMs?: readonly number[];
  /** ± this fraction of random spread on every retry delay (default 0.2). */
  jitter?: number;
  /** Longest one attempt may take (ms). */
  timeoutMs?: number;
  /** Targets may be private addresses (WEBHOOKS_ALLOW_PRIVATE). */
  allowPrivate?: boolean;
  /** An endpoint failing for this long without a success is disabled (default 3 days). */
  disableAfterMs?: number;
  /** Events and deliveries older than this are deleted (default 30 days). */
  retentionMs?: number;
  /** Longest Retry-After honoured (ms; default 24 h). */
  maxRetryAfterMs?: number;
  log?: RunnerLog;
  random?: () => number;
  /**
   * PostgreSQL: LISTEN for new deliveries on this connection string, so a
   * write in any process starts its delivery at once (default: no listener,
   * poll only). See jobs/webhook-listener.ts.
   */
  listenUrl?: string | undefined;
  /** PostgreSQL: where writers NOTIFY (DATABASE_URL); the listener's probe goes that way (default listenUrl). */
  notifyUrl?: string | undefined;
  /** Called with each first-attempt success's lag (ms from the event's commit to the recorded 2xx). */
  onDelivered?: (lagMs: number) => void;
  /** PostgreSQL: called when the listener's health (`listening`) changes. */
  onListenerHealth?: (healthy: boolean) => void;
}

interface Finished {
  delivery: repo.ClaimedDelivery;
  startedAt: number;
  result: SendResult;
}

/** How long a finished attempt may wait for others to be recorded with it (ms). */
const RECORD_DELAY_MS = 5;

const quiet: RunnerLog = { info() {}, warn() {}, error() {} };
const DAY = 24 * 60 * 60 * 1000;
const SWEEP_MS = 10 * 60 * 1000;

/** An event as the worker hands it to its renderer. */
export type EventToSend = Pick<repo.EventRow, "id" | "type" | "seq" | "created_at" | "data">;

export type AttemptOutcome = "succeeded" | "retry" | "failed";

/** How a receiver's answer is judged (spec §7): 2xx success; 4xx except 408/429 stops; the rest is retried. */
export function judge(result: Pick<SendResult, "statusCode" | "error">): AttemptOutcome {
  const status = result.statusCode;
  if (status !== null && status >= 200 && status < 300 && result.error === null) return "succeeded";
  if (status !== null && status >= 400 && status < 500 && status !== 408 && status !== 429) return "failed";
  return "retry";
}

/**
 * Delivers the outbox: at least once, in order per contact and endpoint (a
 * delivery waits while an earlier one of its chain is pending), with leases,
 * so any number of processes may run a worker on one PostgreSQL database (they
 * claim with FOR UPDATE SKIP LOCKED) and a delivery a crashed worker held is
 * sent again when its lease expires.
 */
export class WebhookWorker {
  readonly id = `whworker_${randomBytes(8).toString("hex")}`;
  private readonly pollMs: number;
  private readonly leaseMs: number;
  private readonly concurrency: number;
  private readonly schedule: readonly number[];
  private readonly jitter: number;
  private readonly timeoutMs: number;
  private readonly allowPrivate: boolean;
  private readonly disableAfterMs: number;
  private readonly retentionMs: number;
  private readonly maxRetryAfterMs: number;
  private readonly log: RunnerLog;
  private readonly random: () => number;
  private loop: Promise<void> | undefined;
  private stopping = false;
  private readonly idle = new Idle();
  /** Attempts being sent (a slot each until recorded). */
  private readonly sending = new Set<Promise<void>>();
  private lastSweep = 0;
  private unlisten: (() => void) | undefined;
  private readonly listenUrl: string | undefined;
  private readonly notifyUrl: string | undefined;
  private listener: DeliveryListener | undefined;
  /** Attempts sent and waiting to be recorded by the next step (still holding their slot). */
  private finished: Finished[] = [];
  private recordTimer: NodeJS.Timeout | undefined;
  private readonly onDelivered: ((lagMs: number) => void) | undefined;
  private readonly onListenerHealth: ((healthy: boolean) => void) | undefined;

  /**
   * `eventBody` renders an event as the bytes sent (the same on every
   * attempt): the caller gives the wire representation (the native one,
   * http/native/event-representation.ts), so the job depends on no surface.
   */
  constructor(
    private readonly store: Store,
    private readonly eventBody: (event: EventToSend) => string,
    options: WebhookWorkerOptions = {},
  ) {
    this.pollMs = options.pollMs ?? 200;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.leaseMs = options.leaseMs ?? this.timeoutMs * 2 + 30_000;
    this.concurrency = options.concurrency ?? 64;
    this.schedule = options.retryScheduleMs ?? DEFAULT_RETRY_SCHEDULE_MS;
    this.jitter = options.jitter ?? 0.2;
    this.allowPrivate = options.allowPrivate ?? false;
    this.disableAfterMs = options.disableAfterMs ?? 3 * DAY;
    this.retentionMs = options.retentionMs ?? 30 * DAY;
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? DAY;
    this.log = options.log ?? quiet;
    this.random = options.random ?? Math.random;
    this.listenUrl = options.listenUrl;
    this.notifyUrl = options.notifyUrl;
    this.onDelivered = options.onDelivered;
    this.onListenerHealth = options.onListenerHealth;
  }

  start(): void {
    if (this.loop) return;
    this.stopping = false;
    // A committed write that queued deliveries wakes the worker at once: this
    // process's writes through the commit hook, other processes' through
    // PostgreSQL NOTIFY (when a listener runs); anything else at the next poll.
    this.unlisten = onEventsCommitted(() => this.notify());
    if (this.listenUrl && this.store.dialect === "postgres") {
      this.listener = new DeliveryListener(
        this.listenUrl,
        this.notifyUrl ?? this.listenUrl,
        () => this.notify(),
        this.log,
        {},
        this.onListenerHealth,
      );
      this.listener.start();
    }
    this.loop = this.run();
  }

  /** Stops claiming; waits for the attempts in flight to be recorded. */
  async stop(): Promise<void> {
    this.unlisten?.();
    this.unlisten = undefined;
    await this.listener?.stop();
    this.listener = undefined;
    this.stopping = true;
    this.idle.wake();
    await this.loop;
    this.loop = undefined;
  }

  /** There may be new work: look now instead of at the next poll. */
  notify(): void {
    this.idle.wake();
  }

  /** Whether the PostgreSQL listener is connected and its notifications arrive (tests, metrics). */
  get listening(): boolean {
    return this.listener?.healthy ?? false;
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      try {
        await this.sweep();
        await this.cycle(true);
      } catch (error) {
        this.log.error({ err: error }, "webhook worker: unexpected failure");
      }
      if (this.stopping) break;
      // A step claims every due delivery there is a slot for (after recording
      // what ended, which may release the next event of a chain), so looking
      // again at once finds nothing new: sleep until the poll, a new delivery,
      // or attempts to record (which free slots).
      await this.idle.sleep(this.pollMs);
    }
    await Promise.allSettled([...this.sending]);
    // Record what was sent before stopping, claim nothing more.
    await this.cycle(false).catch((error: unknown) => {
      this.log.error({ err: error }, "webhook worker: could not record the last attempts");
    });
  }

  private async sweep(): Promise<void> {
    const at = now();
    if (at - this.lastSweep < SWEEP_MS) return;
    this.lastSweep = at;
    let removed = 0;
    for (;;) {
      const n = await repo.deleteOlderThan(this.store.db, at - this.retentionMs, 1000);
      removed += n;
      if (n === 0) break;
    }
    if (removed > 0) this.log.info({ removed }, "webhook worker: removed events past their retention");
  }

  /**
   * One step of the worker, in one transaction: records the attempts that
   * ended since the last step (successes with set-based statements, the
   * others one by one: retries, stops, disabling), then claims due
   * deliveries for the slots free and starts sending them. Attempts that end
   * close together are thus recorded together, and with the next claim: at a
   * thousand deliveries a second, a transaction per delivery would queue
   * behind the API's own writes (SQLite has one writer).
   */
  private async cycle(claim: boolean): Promise<number> {
    const batch = this.finished.splice(0);
    const free = claim ? this.concurrency - this.sending.size : 0;
    if (batch.length === 0 && free === 0) return 0;
    const at = now();
    let claimed: repo.ClaimedDelivery[];
    try {
      claimed = await this.store.transaction(async (tx) => {
        if (batch.length > 0) await this.recordAll(tx, batch);
        if (free === 0) return [];
        const ids = await repo.claimDeliveries(tx, this.id, at, at + this.leaseMs, free);
        return repo.loadClaimed(tx, ids);
      });
    } catch (error) {
      // Kept for the next step (the leases hold meanwhile).
      this.finished.unshift(...batch);
      throw error;
    }
    this.launch(claimed);
    return claimed.length;
  }

  private launch(claimed: repo.ClaimedDelivery[]): void {
    // One body per event, whatever the number of its endpoints in this claim.
    const bodies = new Map<string, string>();
    for (const delivery of claimed) {
      let body = bodies.get(delivery.event_id);
      if (body === undefined) {
        body = this.eventBody({
          id: delivery.event_id,
          type: delivery.event_type,
          seq: delivery.event_seq,
          created_at: delivery.event_created_at,
          data: delivery.event_data,
        });
        bodies.set(delivery.event_id, body);
      }
      const task = this.send(delivery, body);
      this.sending.add(task);
      void task.finally(() => this.sending.delete(task));
    }
  }

  /** Tests and the CLI: runs until nothing is due (deliveries waiting for a retry are left). */
  async drain(): Promise<void> {
    for (;;) {
      const claimed = await this.cycle(true);
      if (claimed === 0 && this.sending.size === 0 && this.finished.length === 0) return;
      if (this.sending.size > 0 && this.finished.length === 0) await Promise.race([...this.sending]);
    }
  }

  /** Sends one delivery; its result waits in `finished` for the next step to record it. Never rejects. */
  private async send(delivery: repo.ClaimedDelivery, body: string): Promise<void> {
    const startedAt = now();
    let result: SendResult;
    try {
      const secrets = [delivery.secret];
      if (
        delivery.previous_secret !== null &&
        delivery.previous_secret_expires_at !== null &&
        delivery.previous_secret_expires_at > startedAt
      ) {
        secrets.push(delivery.previous_secret);
      }
      const headers = signatureHeaders(secrets, delivery.event_id, Math.floor(startedAt / 1000), body);
      result = await sendWebhook(delivery.url, { ...headers }, body, {
        timeoutMs: this.timeoutMs,
        allowPrivate: this.allowPrivate,
      });
    } catch (error) {
      result = {
        statusCode: null,
        error: `error: ${(error as Error).message}`.slice(0, 300),
        durationMs: now() - startedAt,
        responseBody: null,
        retryAfterMs: null,
      };
    }
    this.finished.push({ delivery, startedAt, result });
    // Results that arrive within a few ms are recorded by one step.
    if (this.recordTimer === undefined) {
      this.recordTimer = setTimeout(() => {
        this.recordTimer = undefined;
        this.idle.wake();
      }, RECORD_DELAY_MS);
    }
  }

  private async recordAll(tx: Tx, batch: Finished[]): Promise<void> {
    const at = now();
    const succeeded: Finished[] = [];
    for (const f of batch) {
      if (judge(f.result) === "succeeded") succeeded.push(f);
      else await this.record(tx, f.delivery, f.startedAt, f.result);
    }
    if (succeeded.length === 0) return;
    const recorded = await repo.completeHeldDeliveries(
      tx,
      this.id,
      at,
      succeeded.map((f) => ({
        id: f.delivery.id,
        statusCode: f.result.statusCode!,
        attempt: {
          delivery_id: f.delivery.id,
          attempt: f.delivery.attempts + 1,
          started_at: f.startedAt,
          duration_ms: f.result.durationMs,
          status_code: f.result.statusCode,
          error: null,
          response_body: f.result.responseBody,
        },
      })),
    );
    for (const f of succeeded) {
      if (!recorded.has(f.delivery.id)) {
        this.log.warn(
          { delivery_id: f.delivery.id },
          "webhook worker: lease lost; the attempt is not recorded",
        );
      } else if (f.delivery.attempts === 0) {
        this.onDelivered?.(at - f.delivery.created_at);
      }
    }
    await repo.clearFailing(tx, [...new Set(succeeded.map((f) => f.delivery.subscription_id))]);
  }

  private retryDelay(attempt: number, retryAfterMs: number | null): number {
    const base = this.schedule[attempt] ?? 0;
    const spread = base * this.jitter * (this.random() * 2 - 1);
    const scheduled = Math.max(0, Math.round(base + spread));
    if (retryAfterMs === null) return scheduled;
    return Math.max(scheduled, Math.min(retryAfterMs, this.maxRetryAfterMs));
  }

  /**
   * Records an attempt that did not succeed (successes are recorded together
   * by `recordAll`): a retry at its time, or the end of the delivery; and the
   * endpoint's failing state (disabled on a 410 or after failing too long).
   */
  private async record(
    tx: Tx,
    delivery: repo.ClaimedDelivery,
    startedAt: number,
    result: SendResult,
  ): Promise<void> {
    const at = now();
    const attempt = delivery.attempts + 1;
    const error = result.error ?? `HTTP ${result.statusCode ?? "?"} from the endpoint`;
    const common = {
      attempts: attempt,
      lease_owner: null,
      lease_until: null,
      last_status_code: result.statusCode,
      last_error: error,
      updated_at: at,
    };
    const patch: Partial<repo.DeliveryRow> =
      judge(result) === "failed" || attempt >= this.schedule.length
        ? { ...common, status: "failed", completed_at: at }
        : { ...common, next_attempt_at: at + this.retryDelay(attempt, result.retryAfterMs) };
    if (!(await repo.updateHeldDelivery(tx, delivery.id, this.id, patch))) {
      this.log.warn({ delivery_id: delivery.id }, "webhook worker: lease lost; the attempt is not recorded");
      return;
    }
    await repo.insertAttempt(tx, {
      delivery_id: delivery.id,
      attempt,
      started_at: startedAt,
      duration_ms: result.durationMs,
      status_code: result.statusCode,
      error,
      response_body: result.responseBody,
    });
    const subscription = await repo.findSubscriptionById(tx, delivery.subscription_id);
    if (!subscription || subscription.enabled === 0) return;
    if (result.statusCode === 410) {
      await this.disable(tx, subscription, "gone", "The endpoint answered 410 Gone.", at, startedAt);
      return;
    }
    const since = subscription.failing_since ?? startedAt;
    if (at - since >= this.disableAfterMs) {
      await this.disable(
        tx,
        subscription,
        "failing",
        `Every attempt failed for ${Math.round((at - since) / 3_600_000)} hours.`,
        at,
        since,
      );
    } else if (subscription.failing_since === null) {
      await repo.updateSubscription(tx, subscription.id, { failing_since: since });
    }
  }

  /**
   * Disables an endpoint and tells the organisation: the subscription's
   * `disabled_reason`, a `webhook_subscription.disabled` event (delivered to
   * the endpoints that subscribe to it) and a canceled entry in this
   * endpoint's deliveries log.
   */
  private async disable(
    tx: Tx,
    subscription: repo.SubscriptionRow,
    reason: "gone" | "failing",
    message: string,
    at: number,
    failingSince: number,
  ): Promise<void> {
    await repo.updateSubscription(tx, subscription.id, {
      enabled: 0,
      failing_since: subscription.failing_since ?? failingSince,
      disabled_at: at,
      disabled_reason: reason,
      updated_at: Math.max(at, subscription.updated_at + 1),
    });
    const [event] = await recordEvents(tx, subscription.organization_id, [
      {
        type: "webhook_subscription.disabled",
        data: { subscription: { id: subscription.id, url: subscription.url, reason, message } },
      },
    ]);
    if (event) {
      const notice = newDelivery(event, subscription.id, event.id, at);
      await repo.insertDeliveries(tx, [
        { ...notice, status: "canceled", last_error: `Endpoint disabled: ${message}`, completed_at: at },
      ]);
    }
    this.log.warn({ subscription_id: subscription.id, reason }, "webhook endpoint disabled");
  }
}
