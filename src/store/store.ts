import { createHash } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import SqliteDatabase from "better-sqlite3";
import {
  CompiledQuery,
  Kysely,
  type SqliteDatabase as KyselySqliteDatabase,
  type LogEvent,
  Migrator,
  PostgresAdapter,
  PostgresDialect,
  SqliteDialect,
  sql,
  type Transaction,
} from "kysely";
import pg from "pg";
import type { Config } from "../config.ts";
import { migrationProvider } from "./migrations/index.ts";
import type { Database } from "./schema.ts";

export type Dialect = "sqlite" | "postgres";
export type Db = Kysely<Database>;
export type Tx = Transaction<Database>;
/** Either the root handle or a transaction: repositories accept both. */
export type Executor = Db | Tx;

const dialects = new WeakMap<Executor, Dialect>();

/**
 * The dialect a handle speaks: the store binds it to its root handle and to
 * each transaction it opens, so repositories ask the handle they are given
 * and no caller passes the dialect along. Any other handle (one with plugins,
 * one a test made) is read once from how it writes a parameter: `$1` on
 * PostgreSQL, `?` on SQLite.
 */
export function dialectOf(db: Executor): Dialect {
  let dialect = dialects.get(db);
  if (dialect === undefined) {
    dialect = sql`${0}`.compile(db).sql === "$1" ? "postgres" : "sqlite";
    dialects.set(db, dialect);
  }
  return dialect;
}

export interface Store {
  readonly dialect: Dialect;
  readonly db: Db;
  /** Runs `fn` in one transaction; SQLite transactions are serialised in-process. */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /** Resolves when the store answers a trivial query. */
  ping(): Promise<void>;
  migrate(): Promise<{ applied: string[] }>;
  close(): Promise<void>;
  /** Calls `observer` after every statement (metrics, tracing); returns what stops it. */
  observeQueries(observer: QueryObserver): () => void;
  /** PostgreSQL: the connection pool's use now; undefined on SQLite (one connection). */
  readonly poolStats: (() => PoolStats) | undefined;
  /**
   * Where the database is and how it was opened, so another thread can open
   * it with a connection of its own (the webhook thread, jobs/webhook-thread.ts,
   * through `openStoreAt`); undefined for an in-memory SQLite database.
   */
  readonly address: StoreAddress | undefined;
}

/** A store's database as another thread opens it (structured-clonable). */
export type StoreAddress =
  | { kind: "sqlite"; file: string }
  | { kind: "postgres"; url: string; options: PostgresOptions };

/** The store at `address`, on connections of its own; `poolSize` replaces PostgreSQL's. */
export function openStoreAt(address: StoreAddress, poolSize?: number): Store {
  if (address.kind === "sqlite") return createSqliteStore(address.file);
  return createPostgresStore(address.url, { ...address.options, ...(poolSize && { poolSize }) });
}

/** One statement the store ran, with how long it took. */
export interface QueryEvent {
  sql: string;
  durationMs: number;
  failed: boolean;
}
export type QueryObserver = (event: QueryEvent) => void;
export interface PoolStats {
  total: number;
  idle: number;
  waiting: number;
  max: number;
}

/** Kysely's log hook, forwarding each statement to the store's observers (none: nothing is built). */
class QueryLog {
  observers: QueryObserver[] = [];
  readonly log = (event: LogEvent) => {
    if (this.observers.length === 0) return;
    const observed = {
      sql: event.query.sql,
      durationMs: event.queryDurationMillis,
      failed: event.level === "error",
    };
    for (const observer of this.observers) observer(observed);
  };
}

// BIGINT columns hold millisecond timestamps and counts: well inside 2^53.
pg.types.setTypeParser(20, (value) => Number.parseInt(value, 10));

export function createStore(
  config: Pick<Config, "databaseUrl" | "dataDir"> &
    Partial<
      Pick<
        Config,
        "databaseQueryTimeoutMs" | "databasePreparedStatements" | "databasePoolSize" | "databasePoolTimeoutMs"
      >
    >,
): Store {
  if (config.databaseUrl) {
    return createPostgresStore(config.databaseUrl, {
      queryTimeoutMs: config.databaseQueryTimeoutMs,
      preparedStatements: config.databasePreparedStatements,
      poolSize: config.databasePoolSize,
      poolTimeoutMs: config.databasePoolTimeoutMs,
    });
  }
  mkdirSync(config.dataDir, { recursive: true });
  return createSqliteStore(join(config.dataDir, "phonebook.db"));
}

export function createSqliteStore(filename: string): Store {
  const connection = new SqliteDatabase(filename);
  connection.pragma("journal_mode = WAL");
  connection.pragma("synchronous = NORMAL");
  connection.pragma("foreign_keys = ON");
  connection.pragma("busy_timeout = 5000");
  const queryLog = new QueryLog();
  const db = new Kysely<Database>({
    dialect: withImmediateTransactions(new SqliteDialect({ database: withStatementCache(connection) })),
    log: queryLog.log,
  });
  const store = finishStore("sqlite", db, queryLog, undefined, async () => {
    connection.close();
  });
  return connection.memory ? store : { ...store, address: { kind: "sqlite", file: connection.name } };
}

/**
 * Queries whose SQL starts with this comment return each row as an array of
 * column values in select order instead of an object. Building a row object
 * (a property per column, each name interned) cost more than SQLite's own
 * work on a page of contacts: better-sqlite3's raw mode on SQLite, node-pg's
 * `rowMode: "array"` on PostgreSQL. Repositories opt in per query (see
 * `executeArrayRows`); everything else keeps object rows.
 */
export const ARRAY_ROWS = "/* rows: array */ ";

/**
 * Queries whose SQL starts with this comment (after ARRAY_ROWS, if both) run
 * on PostgreSQL as named prepared statements: each connection parses and
 * plans the statement once and then only binds and executes it. Planning a
 * get cost more than executing it (0.37–0.6 ms against 0.06–0.16 ms). Only
 * for lookups by a key (a contact by id, an API key, an organisation, an
 * identity), whose generic plan is the right one for every value; never for
 * searches, whose best plan depends on the term. Off with
 * DATABASE_PREPARED_STATEMENTS=false (PgBouncer in transaction mode). On
 * SQLite it is only a comment (every statement is prepared and cached there).
 */
export const PREPARED = "/* prepared */ ";

/** `query` marked to run as a named prepared statement on PostgreSQL (see PREPARED). */
export function prepared(query: CompiledQuery): CompiledQuery {
  return CompiledQuery.raw(PREPARED + query.sql, query.parameters as unknown[]);
}

/** The first row of `query`, run as a named prepared statement on PostgreSQL (see PREPARED). */
export async function firstRow<T>(db: Executor, query: CompiledQuery): Promise<T | undefined> {
  const { rows } = await db.executeQuery<T>(prepared(query));
  return rows[0];
}

/** Runs a compiled query whose rows come back as arrays (see ARRAY_ROWS). */
export async function executeArrayRows(db: Executor, query: CompiledQuery): Promise<unknown[][]> {
  const { rows } = await db.executeQuery<unknown[]>(
    CompiledQuery.raw(ARRAY_ROWS + query.sql, query.parameters as unknown[]),
  );
  return rows;
}

/** Statements longer than this (multi-row bulk INSERTs) are not kept: each is used once. */
const CACHED_SQL_MAX_LENGTH = 16_384;
const CACHED_STATEMENTS_MAX = 500;

/**
 * Kysely prepares every query anew; preparing the contact view (a join and a
 * correlated subquery) costs more than running it. Statements are cached by
 * their SQL text and reused: Kysely's SQLite driver runs one query at a time
 * on its single connection, so a statement is never in use twice at once, and
 * SQLite re-prepares a cached statement by itself after a schema change.
 */
function withStatementCache(connection: SqliteDatabase.Database): KyselySqliteDatabase {
  const cache = new Map<string, SqliteDatabase.Statement>();
  return {
    close: () => connection.close(),
    prepare(text) {
      const cached = cache.get(text);
      if (cached) return cached;
      const statement = connection.prepare(text);
      if (text.startsWith(ARRAY_ROWS)) statement.raw(true);
      if (text.length <= CACHED_SQL_MAX_LENGTH) {
        // Oldest first out: a Map iterates in insertion order.
        if (cache.size >= CACHED_STATEMENTS_MAX) cache.delete(cache.keys().next().value!);
        cache.set(text, statement);
      }
      return statement;
    },
  };
}

export interface PostgresOptions {
  /**
   * Longest a statement may run, in ms (default 30 s): PostgreSQL cancels it
   * (statement_timeout), and the client gives up on its own when no answer
   * comes (query_timeout: a network partition, where the server never learns
   * the client waits), closing that connection so the pool opens a new one.
   */
  queryTimeoutMs?: number | undefined;
  /** Named prepared statements for queries marked PREPARED (default true; see PREPARED). */
  preparedStatements?: boolean | undefined;
  /** Most connections of the pool (DATABASE_POOL_SIZE, default 10). */
  poolSize?: number | undefined;
  /**
   * Longest a query waits for a free connection, or for a new one to open
   * (DATABASE_POOL_TIMEOUT_MS, default 5 s); past it the query fails with
   * pg-pool's connect timeout, which the surfaces answer with 503.
   */
  poolTimeoutMs?: number | undefined;
}

export function createPostgresStore(url: string, options: PostgresOptions = {}): Store {
  const timeout = options.queryTimeoutMs ?? 30_000;
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: options.poolTimeoutMs ?? 5000,
    statement_timeout: timeout,
    // The client's own limit comes a little after the server's, so a slow
    // statement is cancelled by the server (a clean error, the connection kept).
    query_timeout: timeout + 1000,
    keepAlive: true,
  });
  withPoolerFallback(pool);
  // An idle client losing its server must not crash the process; the next query reports it.
  pool.on("error", () => {});
  // Nor may a checked-out one: pg-pool listens for errors only on idle clients, and a
  // client whose socket dies mid-query also emits "error" (uncaught → process exit).
  // The query itself rejects (→ 503), and pg-pool discards the broken client on release.
  pool.on("connect", (client) => {
    client.on("error", () => {});
    withQueryWrapper(client, options.preparedStatements ?? true);
  });
  const dialect = new PostgresDialect({ pool });
  const createDriver = dialect.createDriver.bind(dialect);
  dialect.createDriver = () => {
    const driver = createDriver();
    // The limit also travels inside each transaction (SET LOCAL, one round trip
    // with BEGIN): through a transaction-mode pooler, which refuses or drops the
    // startup parameter, a transaction's statements are still bounded.
    driver.beginTransaction = async (connection, settings) => {
      const begin = settings.isolationLevel
        ? `start transaction isolation level ${settings.isolationLevel}`
        : "begin";
      await connection.executeQuery(CompiledQuery.raw(`${begin}; set local statement_timeout = ${timeout}`));
    };
    return driver;
  };
  const queryLog = new QueryLog();
  const db = new Kysely<Database>({ dialect, log: queryLog.log });
  const poolStats = (): PoolStats => ({
    total: pool.totalCount,
    idle: pool.idleCount,
    waiting: pool.waitingCount,
    max: pool.options.max,
  });
  const store = finishStore(
    "postgres",
    db,
    queryLog,
    poolStats,
    async () => {},
    () => migratePostgres(url),
  );
  return { ...store, address: { kind: "postgres", url, options } };
}

/**
 * PgBouncer (transaction pooling) refuses startup parameters it does not track,
 * statement_timeout among them ("unsupported startup parameter"). The pool then
 * connects without it: transactions keep their limit (SET LOCAL at BEGIN), single
 * statements keep the client's query_timeout, and the server-side limit for them
 * comes from the role (`ALTER ROLE … SET statement_timeout`, docs/deploying.md).
 */
function withPoolerFallback(pool: pg.Pool): void {
  const options = (pool as unknown as { options: { statement_timeout?: number } }).options;
  const connect = pool.connect.bind(pool) as () => Promise<pg.PoolClient>;
  (pool as { connect: unknown }).connect = async (...args: unknown[]) => {
    if (args.length > 0) return (connect as (...a: unknown[]) => unknown)(...args);
    try {
      return await connect();
    } catch (error) {
      if (options.statement_timeout === undefined || !isUnsupportedStartupParameter(error)) throw error;
      options.statement_timeout = undefined;
      return connect();
    }
  };
}

function isUnsupportedStartupParameter(error: unknown): boolean {
  return error instanceof Error && /unsupported startup parameter/i.test(error.message);
}

/** Same key as Kysely's own migration lock, so old and new processes exclude each other. */
const MIGRATION_LOCK_ID = "3853314791062309107";

/**
 * Runs the migrations on a connection of their own, with no statement limit
 * (a migration may rewrite a large table), under a transaction-scoped advisory
 * lock taken by the same statement that begins the migration transaction.
 * Kysely's own lock is session-scoped (pg_advisory_lock … pg_advisory_unlock
 * around the transaction): through PgBouncer in transaction mode those three
 * may run on three server connections, and a lock left on one of them makes
 * the next deploy's migration wait forever. pg_advisory_xact_lock ends with
 * the transaction, on whatever server connection it ran.
 */
async function migratePostgres(url: string): Promise<{ applied: string[] }> {
  const pool = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 5000, keepAlive: true });
  withPoolerFallback(pool);
  pool.on("error", () => {});
  const dialect = new PostgresDialect({ pool });
  const createDriver = dialect.createDriver.bind(dialect);
  dialect.createDriver = () => {
    const driver = createDriver();
    driver.beginTransaction = async (connection) => {
      await connection.executeQuery(
        CompiledQuery.raw(
          `begin; set local statement_timeout = 0; select pg_advisory_xact_lock(${MIGRATION_LOCK_ID})`,
        ),
      );
    };
    return driver;
  };
  dialect.createAdapter = () => new TransactionLockedPostgresAdapter();
  const db = new Kysely<Database>({ dialect });
  try {
    return await runMigrator(db, "postgres");
  } finally {
    await db.destroy();
  }
}

/** The lock is taken by the migration transaction itself (see migratePostgres). */
class TransactionLockedPostgresAdapter extends PostgresAdapter {
  override async acquireMigrationLock(): Promise<void> {}
  override async releaseMigrationLock(): Promise<void> {}
}

/**
 * Kysely's PostgreSQL driver calls `client.query(sql, parameters)`. Here:
 * - a query marked ARRAY_ROWS is passed on with `rowMode: "array"`;
 * - a query marked PREPARED is passed on with a `name` derived from its text
 *   (node-pg then prepares it once per connection), unless `prepare` is off;
 * - a query the client gave up on (query_timeout: no answer at all, as in a
 *   network partition) closes the connection, which may still be waiting for
 *   that answer: the pool then discards it instead of lending it out again.
 */
function withQueryWrapper(client: pg.PoolClient, prepare: boolean): void {
  const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
  const giveUp = (error: unknown) => {
    if (error instanceof Error && error.message === "Query read timeout") {
      (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
    }
    throw error;
  };
  (client as { query: unknown }).query = (first: unknown, ...rest: unknown[]) => {
    let result: unknown;
    if (typeof first === "string" && rest.length === 1 && Array.isArray(rest[0])) {
      const arrays = first.startsWith(ARRAY_ROWS);
      const named = prepare && first.startsWith(PREPARED, arrays ? ARRAY_ROWS.length : 0);
      result =
        arrays || named
          ? query({
              text: first,
              values: rest[0],
              ...(arrays ? { rowMode: "array" } : {}),
              ...(named ? { name: statementName(first) } : {}),
            })
          : query(first, ...rest);
    } else {
      result = query(first, ...rest);
    }
    // Callback-style and streaming calls (pg-cursor) return no promise: passed through as they are.
    return result instanceof Promise ? result.catch(giveUp) : result;
  };
}

const statementNames = new Map<string, string>();

/** A stable name per statement text (the same on every connection): `pb_` + 20 hex of its SHA-1. */
function statementName(text: string): string {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `pb_${createHash("sha1").update(text).digest("hex").slice(0, 20)}`;
    if (statementNames.size >= 1000) statementNames.clear();
    statementNames.set(text, name);
  }
  return name;
}

/** Work registered on a transaction of `Store.transaction`: run before its commit, and after it. */
export interface TransactionHooks {
  /** Run in order inside the transaction once its function returned; a hook may add hooks. */
  beforeCommit: Array<() => Promise<void>>;
  /** Run after the commit (not after a rollback); must not throw. */
  afterCommit: Array<() => void>;
}

const transactionHooks = new WeakMap<object, TransactionHooks>();

/** The hooks of a transaction opened by `Store.transaction`; undefined for the root handle. */
export function hooksOf(db: Executor): TransactionHooks | undefined {
  return transactionHooks.get(db);
}

async function runMigrator(db: Db, dialect: Dialect): Promise<{ applied: string[] }> {
  const migrator = new Migrator({
    db,
    provider: migrationProvider(dialect),
    migrationTableName: "phonebook_migrations",
    migrationLockTableName: "phonebook_migrations_lock",
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return { applied: (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName) };
}

function finishStore(
  dialect: Dialect,
  db: Db,
  queryLog: QueryLog,
  poolStats: (() => PoolStats) | undefined,
  closeDriver: () => Promise<void>,
  migrate: () => Promise<{ applied: string[] }> = () => runMigrator(db, dialect),
): Store {
  let closed = false;
  dialects.set(db, dialect);
  return {
    dialect,
    db,
    poolStats,
    address: undefined,
    observeQueries(observer) {
      queryLog.observers = [...queryLog.observers, observer];
      return () => {
        queryLog.observers = queryLog.observers.filter((o) => o !== observer);
      };
    },
    async transaction(fn) {
      const hooks: TransactionHooks = { beforeCommit: [], afterCommit: [] };
      const value = await db.transaction().execute(async (tx) => {
        transactionHooks.set(tx, hooks);
        dialects.set(tx, dialect);
        const result = await fn(tx);
        for (let i = 0; i < hooks.beforeCommit.length; i++) await hooks.beforeCommit[i]!();
        return result;
      });
      for (const hook of hooks.afterCommit) hook();
      return value;
    },
    async ping() {
      await sql`SELECT 1`.execute(db);
    },
    migrate,
    async close() {
      if (closed) return;
      closed = true;
      await db.destroy();
      await closeDriver();
    },
  };
}

/**
 * SQLite transactions begin IMMEDIATE: the write lock is taken at BEGIN and
 * waited for under busy_timeout. A deferred transaction that reads, then
 * writes, fails at once with SQLITE_BUSY when another process (the CLI's
 * `phonebook import`, a second server on the same file) committed in between;
 * within one process transactions are serialised anyway, so this costs nothing.
 */
function withImmediateTransactions(dialect: SqliteDialect): SqliteDialect {
  const createDriver = dialect.createDriver.bind(dialect);
  dialect.createDriver = () => {
    const driver = createDriver();
    driver.beginTransaction = async (connection) => {
      await connection.executeQuery(CompiledQuery.raw("begin immediate"));
    };
    return driver;
  };
  return dialect;
}
