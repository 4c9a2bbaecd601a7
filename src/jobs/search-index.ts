import type { FastifyBaseLogger } from "fastify";
import { mergeSearchIndexStep } from "../store/repositories/search-index.ts";
import type { Store } from "../store/store.ts";
import { Idle } from "./idle.ts";

export interface SearchIndexMaintainerOptions {
  log?: Pick<FastifyBaseLogger, "warn"> | undefined;
  /** How often to look for work besides start and `notify()`, in ms (default 6 h). */
  intervalMs?: number;
  /** Pages merged per step (default 64: a few tens of ms holding SQLite's write lock). */
  pagesPerStep?: number;
}

/**
 * Keeps SQLite's trigram index in one segment (docs/search.md). FTS5 writes
 * each transaction's index entries as a new segment and merges them only
 * when enough pile up at one level; after bulk writes (an import, a seeded
 * store) a million contacts sat in 14 segments, and every search read each
 * segment's posting lists: reading a term's newest hits cost 2 ms against
 * 0.2 ms in one segment. So at start, after each import (`notify()`) and
 * every 6 hours this merges them, a bounded step at a time with a turn of
 * the event loop between steps, so other writes and requests interleave.
 * Not more often: a full merge rewrites the whole index, and steady small
 * writes are kept in few segments by FTS5's own automerge (a merge every
 * minute under 1,000 contact writes/s took a 1M-contact server down to a few
 * requests a second). Nothing to merge costs one no-op statement. Not used on
 * PostgreSQL (GIN has no segments to merge).
 */
export class SearchIndexMaintainer {
  private readonly idle = new Idle();
  private running: Promise<void> | undefined;
  private stopping = false;

  constructor(
    private readonly store: Store,
    private readonly options: SearchIndexMaintainerOptions = {},
  ) {}

  start(): void {
    if (this.store.dialect !== "sqlite" || this.running) return;
    this.stopping = false;
    this.running = this.loop();
  }

  /** Bulk writes ended (an import): merge the segments they left, soon. */
  notify(): void {
    this.idle.wake();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.idle.wake();
    await this.running;
    this.running = undefined;
  }

  /** Merges until one segment is left (or stop() is called); true when it finished. */
  async mergeAll(): Promise<boolean> {
    const pages = this.options.pagesPerStep ?? 64;
    while (!this.stopping) {
      if (!(await mergeSearchIndexStep(this.store.db, pages))) return true;
      await new Promise((resolve) => setImmediate(resolve));
    }
    return false;
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      try {
        await this.mergeAll();
      } catch (error) {
        // A busy store or a closing one: the next round tries again.
        this.options.log?.warn({ err: error }, "could not merge the search index");
      }
      if (!this.stopping) await this.idle.sleep(this.options.intervalMs ?? 6 * 60 * 60 * 1000);
    }
  }
}
