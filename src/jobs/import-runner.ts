import { randomBytes } from "node:crypto";
import { setImmediate as nextTurn } from "node:timers/promises";
import { now } from "../domain/clock.ts";
import {
  applyImportBatch,
  failureOf,
  finishImport,
  type ImportRow,
  type ImportRowInput,
  LeaseLost,
  storedFile,
} from "../domain/imports.ts";
import { isApiError } from "../errors.ts";
import { findAccount } from "../store/repositories/accounts.ts";
import * as repo from "../store/repositories/imports.ts";
import type { Store } from "../store/store.ts";
import { Idle } from "./idle.ts";
import { parseHere, parseInWorker } from "./import-parse.ts";
import { IMPORT_FIELDS } from "./import-records.ts";

export interface RunnerLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface ImportRunnerOptions {
  /** How often an idle runner looks for work (ms); `notify()` wakes it at once. */
  pollMs?: number;
  /** How long a claim lasts without a committed batch (ms); a runner that dies releases its imports after this. */
  leaseMs?: number;
  /** Rows per transaction. */
  batchSize?: number;
  /** Claims after which an import that keeps being interrupted is failed. */
  maxAttempts?: number;
  /** Upload pieces that never became an import are removed after this long (ms). */
  orphanAfterMs?: number;
  log?: RunnerLog;
  /** Called after each committed batch with its number of rows (metrics: rows/s). */
  onRowsCommitted?: (rows: number) => void;
  /** Called after an import ended (completed or failed): its bulk writes are done. */
  onImportFinished?: () => void;
  /**
   * Where the file is parsed and its rows checked: in a worker thread (the
   * default: parsing overlaps the writes) or in this thread.
   */
  parser?: "worker" | "here";
  /** Tests: called inside each batch's transaction after its writes, before the commit. */
  beforeCommit?: (importId: string, batchNumber: number) => void | Promise<void>;
}

export type RunOutcome = "idle" | "finished" | "paused" | "lost" | "error";

const quiet: RunnerLog = { info() {}, warn() {}, error() {} };

/**
 * Runs imports in batches. Work is found in the store (queued imports, or
 * running ones whose lease expired because their runner died), so any number
 * of processes may run a runner on one PostgreSQL database, and an import
 * interrupted by a crash resumes after its last committed batch.
 */
export class ImportRunner {
  readonly id = `runner_${randomBytes(8).toString("hex")}`;
  private readonly pollMs: number;
  private readonly leaseMs: number;
  private readonly batchSize: number;
  private readonly maxAttempts: number;
  private readonly orphanAfterMs: number;
  private readonly log: RunnerLog;
  private loop: Promise<void> | undefined;
  private stopping = false;
  private readonly idle = new Idle();
  private lastSweep = 0;

  constructor(
    private readonly store: Store,
    private readonly options: ImportRunnerOptions = {},
  ) {
    this.pollMs = options.pollMs ?? 1000;
    this.leaseMs = options.leaseMs ?? 30_000;
    this.batchSize = options.batchSize ?? 500;
    this.maxAttempts = options.maxAttempts ?? 5;
    this.orphanAfterMs = options.orphanAfterMs ?? 60 * 60 * 1000;
    this.log = options.log ?? quiet;
  }

  /** Starts the background loop (idempotent). */
  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.loop = this.run();
  }

  /** Stops after the batch in progress commits; imports it held are released for the next runner. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.idle.wake();
    await this.loop;
    this.loop = undefined;
  }

  /** There may be new work: look now instead of at the next poll. */
  notify(): void {
    this.idle.wake();
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      let outcome: RunOutcome = "idle";
      try {
        await this.sweep();
        outcome = await this.runOnce();
      } catch (error) {
        this.log.error({ err: error }, "import runner: unexpected failure");
        outcome = "error";
      }
      if (outcome !== "finished" && !this.stopping) await this.idle.sleep(this.pollMs);
    }
  }

  private async sweep(): Promise<void> {
    const at = now();
    if (at - this.lastSweep < Math.min(this.orphanAfterMs, 10 * 60 * 1000)) return;
    this.lastSweep = at;
    const removed = await repo.deleteOrphanChunks(this.store.db, at - this.orphanAfterMs);
    if (removed > 0) this.log.info({ removed }, "import runner: removed pieces of abandoned uploads");
  }

  /**
   * Claims one waiting import (or the given one) and processes it to the end,
   * or for `maxBatches` batches (then it stops holding the lease, as a crashed
   * runner would: tests use this to interrupt an import).
   */
  async runOnce(options: { importId?: string; maxBatches?: number } = {}): Promise<RunOutcome> {
    const row = await repo.claimImport(this.store.db, this.id, now(), this.leaseMs, options.importId);
    if (!row) return "idle";
    this.log.info(
      { import_id: row.id, processed_rows: row.processed_rows, attempt: row.attempts },
      row.processed_rows > 0 ? "import resumed" : "import started",
    );
    return this.process(row, options.maxBatches);
  }

  private async process(row: ImportRow, maxBatches: number | undefined): Promise<RunOutcome> {
    if (row.attempts > this.maxAttempts) {
      await this.finish(row, {
        status: "failed",
        failure: `The import was interrupted ${row.attempts - 1} times and was stopped; the counts show what was committed.`,
      });
      return "finished";
    }
    const account = await findAccount(this.store.db, row.account_id);
    if (!account) {
      await this.finish(row, { status: "failed", failure: "The account of this import no longer exists." });
      return "finished";
    }
    const lease = { owner: this.id, durationMs: this.leaseMs };
    let processed = row.processed_rows;
    let batches = 0;
    const commit = async (rows: ImportRowInput[]) => {
      const number = ++batches;
      await this.store.transaction(async (tx) => {
        await applyImportBatch(tx, row, account, rows, processed, lease, IMPORT_FIELDS);
        await this.options.beforeCommit?.(row.id, number);
      });
      processed += rows.length;
      this.options.onRowsCommitted?.(rows.length);
      // better-sqlite3 answers synchronously, so without this the whole import
      // runs in microtasks and the server answers no request until it ends.
      await nextTurn();
    };
    const parse = this.options.parser === "here" ? parseHere : parseInWorker;
    try {
      // Resuming: the rows already committed are read again and skipped.
      const source = storedFile(this.store.db, row);
      const job = {
        format: row.format,
        batchSize: this.batchSize,
        skip: processed,
        phoneCountry: account.default_country,
      };
      for await (const rows of parse(source, job)) {
        await commit(rows);
        if (maxBatches !== undefined && batches >= maxBatches) return "paused";
        if (this.stopping) {
          await this.release(row);
          return "paused";
        }
      }
      await this.finish(row, { status: "completed" });
      this.log.info({ import_id: row.id, processed_rows: processed }, "import completed");
      return "finished";
    } catch (error) {
      if (error instanceof LeaseLost) {
        this.log.warn({ import_id: row.id }, "import runner: another runner holds this import now");
        return "lost";
      }
      if (isApiError(error) && error.status < 500) {
        // The file itself is unusable (cannot happen for a file accepted at upload).
        await this.finish(row, { status: "failed", failure: failureOf(error) });
        return "finished";
      }
      // Left running under its lease: it is retried when the lease expires,
      // and failed after maxAttempts claims.
      this.log.error({ err: error, import_id: row.id, processed_rows: processed }, "import batch failed");
      return "error";
    }
  }

  private async release(row: ImportRow): Promise<void> {
    await repo.updateHeldImport(this.store.db, row.id, this.id, {
      lease_owner: null,
      lease_until: null,
      attempts: Math.max(0, row.attempts - 1),
      updated_at: now(),
    });
  }

  private async finish(
    row: ImportRow,
    outcome: { status: "completed" } | { status: "failed"; failure: string },
  ): Promise<void> {
    await this.store.transaction((tx) => finishImport(tx, row.id, this.id, outcome));
    this.options.onImportFinished?.();
  }
}

declare module "fastify" {
  interface FastifyInstance {
    /** The app's import runner; null when the app was built without jobs. */
    importRunner: ImportRunner | null;
  }
}
