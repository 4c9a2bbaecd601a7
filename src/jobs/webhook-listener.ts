import { randomBytes } from "node:crypto";
import pg from "pg";
import { DELIVERIES_CHANNEL } from "../store/repositories/webhooks.ts";
import type { RunnerLog } from "./import-runner.ts";

export interface ListenerTimings {
  /** Longest wait for the probe to come back before notifications are judged not to arrive (ms). */
  probeTimeoutMs?: number;
  /** How often a healthy listener checks that notifications still arrive (ms). */
  checkEveryMs?: number;
  /** First wait before reconnecting after a failure (ms); doubles up to maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
}

/**
 * PostgreSQL LISTEN/NOTIFY for the webhook worker: a dedicated connection
 * (outside the pool) LISTENs on the deliveries channel, and every transaction
 * that queues deliveries NOTIFYs it at commit (repositories/webhooks.ts), so
 * a delivery starts at once in whichever process has a free worker, not at
 * its next poll.
 *
 * It is only an accelerator: the worker keeps polling. After connecting, and
 * then every minute, the listener NOTIFYs a probe of its own (on a short-lived
 * connection to DATABASE_URL, the writers' way) and waits for it to come back. When it does not (PgBouncer in transaction
 * mode accepts LISTEN but never forwards notifications to an idle client),
 * or when the connection fails or drops, the listener closes, logs it once,
 * and tries again later with a growing backoff (up to 5 minutes); meanwhile
 * the worker finds work at its poll, as without a listener.
 */
export class DeliveryListener {
  private client: pg.Client | undefined;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private backoff: number;
  private probes = new Map<string, () => void>();
  private warned = false;
  private isHealthy = false;
  private readonly probeTimeoutMs: number;
  private readonly checkEveryMs: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;

  constructor(
    private readonly url: string,
    /** Where writers send their NOTIFY (DATABASE_URL): the probe takes the same way. */
    private readonly notifyUrl: string,
    private readonly onNotify: () => void,
    private readonly log: RunnerLog,
    timings: ListenerTimings = {},
    /** Called when `healthy` changes. */
    private readonly onHealth?: (healthy: boolean) => void,
  ) {
    this.probeTimeoutMs = timings.probeTimeoutMs ?? 5000;
    this.checkEveryMs = timings.checkEveryMs ?? 60_000;
    this.backoffMs = timings.backoffMs ?? 1000;
    this.maxBackoffMs = timings.maxBackoffMs ?? 300_000;
    this.backoff = this.backoffMs;
  }

  /** Connected, listening, and the last probe came back. */
  get healthy(): boolean {
    return this.isHealthy;
  }

  private setHealthy(healthy: boolean): void {
    if (healthy === this.isHealthy) return;
    this.isHealthy = healthy;
    this.onHealth?.(healthy);
  }

  start(): void {
    this.stopped = false;
    void this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.close();
  }

  private async close(): Promise<void> {
    this.setHealthy(false);
    const client = this.client;
    this.client = undefined;
    if (client) await client.end().catch(() => {});
  }

  private later(ms: number, run: () => Promise<void>): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => void run(), ms);
    this.timer.unref();
  }

  /** The connection failed, dropped or stopped hearing: close it, poll meanwhile, try again later. */
  private async fail(reason: string): Promise<void> {
    if (this.stopped) return;
    const wasHealthy = this.healthy;
    await this.close();
    if (wasHealthy || !this.warned) {
      this.log.warn(
        { reason, retry_in_ms: this.backoff },
        "webhook listener: notifications unavailable; the worker polls until the listener is back",
      );
      this.warned = true;
    }
    const wait = this.backoff;
    this.backoff = Math.min(this.backoff * 2, this.maxBackoffMs);
    this.later(wait, () => this.connect());
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({
      connectionString: this.url,
      application_name: "phonebook-webhook-listener",
      keepAlive: true,
      connectionTimeoutMillis: 5000,
    });
    this.client = client;
    client.on("error", (error) => {
      if (this.client === client) void this.fail(`connection error: ${error.message}`);
    });
    client.on("end", () => {
      if (this.client === client) void this.fail("connection closed");
    });
    client.on("notification", (message) => {
      const payload = message.payload ?? "";
      // Probes are this listener's own (or another process's: ignored).
      if (payload.startsWith("probe:")) this.probes.get(payload)?.();
      else this.onNotify();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${DELIVERIES_CHANNEL}`);
    } catch (error) {
      if (this.client === client) await this.fail(`could not listen: ${(error as Error).message}`);
      return;
    }
    if (this.client !== client) return;
    await this.check(client, true);
  }

  /** NOTIFYs a probe through the pool and waits for it on the listening connection. */
  private async check(client: pg.Client, first: boolean): Promise<void> {
    if (this.stopped || this.client !== client) return;
    const token = `probe:${randomBytes(8).toString("hex")}`;
    const arrived = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), this.probeTimeoutMs);
      this.probes.set(token, () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    // Sent on a connection of its own to the writers' DATABASE_URL (through the same pooler,
    // if any), not through the pool: a probe must not wait behind, or hold, a request's connection.
    const sender = new pg.Client({ connectionString: this.notifyUrl, connectionTimeoutMillis: 5000 });
    sender.on("error", () => {});
    try {
      await sender.connect();
      await sender.query("SELECT pg_notify($1, $2)", [DELIVERIES_CHANNEL, token]);
    } catch {
      // The store itself is unreachable: judge by whether the probe still arrives.
    } finally {
      await sender.end().catch(() => {});
    }
    const ok = await arrived;
    this.probes.delete(token);
    if (this.stopped || this.client !== client) return;
    if (!ok) {
      await this.fail(
        "a probe NOTIFY did not arrive (a transaction-mode pooler such as PgBouncer does not forward notifications)",
      );
      return;
    }
    if (first || !this.healthy) {
      this.log.info({}, "webhook listener: LISTEN/NOTIFY active");
      this.warned = false;
    }
    this.setHealthy(true);
    this.backoff = this.backoffMs;
    // Work committed while it was not listening is found by the poll; look once now anyway.
    if (first) this.onNotify();
    this.later(this.checkEveryMs, () => this.check(client, false));
  }
}
