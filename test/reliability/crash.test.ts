/**
 * Crash safety of the embedded store: the real server process is killed with
 * SIGKILL at a random moment while several clients write, then restarted and
 * checked. Every write that got a 2xx must be there; a write in flight at the
 * kill may be there or not, but never in part (a contact's name and metadata
 * carry the same version number, written by one PATCH); no contact appears
 * that no client created; the SQLite file passes `PRAGMA integrity_check` and
 * `foreign_key_check`. Scale: PB_CRASH_KILLS (npm test: 3, reliability: 25).
 *
 * Operation kinds are a table (OPERATION_KINDS: create, patch, delete, batch);
 * each marks the contacts it touches as in doubt before sending and
 * acknowledged after a 2xx. An unanswered batch (one transaction) must be
 * found applied whole or not at all.
 *
 * A second test kills the server during an import (PB_CRASH_IMPORT_ROWS rows:
 * npm test 8,000, reliability 60,000), restarts it and checks the resumed
 * import's counts and the store's contacts exactly.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import SqliteDatabase from "better-sqlite3";
import { createAccount } from "../../src/domain/accounts.ts";
import { createApiKey, createOrganization, updateOrganization } from "../../src/domain/organizations.ts";
import { createSqliteStore } from "../../src/store/store.ts";
import { RELIABILITY, scaled } from "../helpers/reliability.ts";
import { type ServerProcess, startServerProcess } from "../helpers/server-process.ts";

const KILLS = scaled("PB_CRASH_KILLS", 3, 25);
const IMPORT_ROWS = scaled("PB_CRASH_IMPORT_ROWS", 8_000, 60_000);
/** The import runner's lease (src/jobs/import-runner.ts default; the server has no setting for it). */
const IMPORT_LEASE_MS = 30_000;
const WORKERS = 4;

/** What a contact looks like at version `v`: one PATCH writes name and metadata together. */
function versionBody(phone: string, v: number) {
  return { name: `c${phone.slice(-6)} v${v}`, metadata: { v, tag: `t${v}` } };
}

interface State {
  exists: boolean;
  v: number;
}

interface Tracked {
  phone: string;
  id: string | undefined;
  /** The state the server acknowledged last (2xx), or what was verified after a restart. */
  acked: State;
  /** The state an unanswered request would produce, if it was applied before the kill. */
  inDoubt: State | undefined;
}

class Model {
  readonly contacts = new Map<string, Tracked>();
  /** Batches sent but not acknowledged: after a restart each is applied whole or not at all. */
  readonly batchesInDoubt: Tracked[][] = [];
  acknowledged = 0;
  inDoubtResolved = 0;
  batchesAcknowledged = 0;
  batchesApplied = 0;
  batchesAbsent = 0;
  private next = 0;

  newPhone(worker: number): string {
    this.next += 1;
    return `+62812${String(worker)}${String(this.next).padStart(6, "0")}`;
  }

  /** A contact of this worker with no request in doubt. */
  pick(worker: number, exists: boolean): Tracked | undefined {
    const mine = this.mine(worker, exists);
    return mine[Math.floor(Math.random() * mine.length)];
  }

  /** Up to `n` distinct contacts of this worker with no request in doubt. */
  pickMany(worker: number, exists: boolean, n: number): Tracked[] {
    const mine = this.mine(worker, exists);
    for (let i = mine.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [mine[i], mine[j]] = [mine[j]!, mine[i]!];
    }
    return mine.slice(0, n);
  }

  private mine(worker: number, exists: boolean): Tracked[] {
    return [...this.contacts.values()].filter(
      (c) => c.phone.startsWith(`+62812${worker}`) && c.inDoubt === undefined && c.acked.exists === exists,
    );
  }
}

interface Client {
  url: string;
  auth: Record<string, string>;
  accountPhoneNumberId: string;
}

class ServerGone extends Error {}

async function call(client: Client, method: string, path: string, body?: unknown) {
  let res: Response;
  try {
    res = await fetch(client.url + path, {
      method,
      headers: { ...client.auth, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (error) {
    throw new ServerGone(String(error));
  }
  let text: string;
  try {
    text = await res.text();
  } catch (error) {
    // Headers arrived but the body did not: the outcome is unknown, as if unanswered.
    throw new ServerGone(String(error));
  }
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

interface OperationKind {
  name: string;
  weight: number;
  /** One operation: mark what it may change as in doubt, send it, record a 2xx as acknowledged. */
  run(client: Client, model: Model, worker: number): Promise<void>;
}

const OPERATION_KINDS: OperationKind[] = [
  {
    name: "create",
    weight: 4,
    async run(client, model, worker) {
      const phone = model.newPhone(worker);
      const tracked: Tracked = {
        phone,
        id: undefined,
        acked: { exists: false, v: 0 },
        inDoubt: { exists: true, v: 0 },
      };
      model.contacts.set(phone, tracked);
      const res = await call(client, "POST", "/v1/contacts", {
        phone_number: phone,
        ...versionBody(phone, 0),
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      tracked.id = (res.body.data as { id: string }).id;
      tracked.acked = { exists: true, v: 0 };
      tracked.inDoubt = undefined;
      model.acknowledged += 1;
    },
  },
  {
    name: "patch",
    weight: 3,
    async run(client, model, worker) {
      const tracked = model.pick(worker, true);
      if (!tracked?.id) return;
      const v = tracked.acked.v + 1;
      tracked.inDoubt = { exists: true, v };
      const res = await call(client, "PATCH", `/v1/contacts/${tracked.id}`, versionBody(tracked.phone, v));
      assert.equal(res.status, 200, JSON.stringify(res.body));
      tracked.acked = { exists: true, v };
      tracked.inDoubt = undefined;
      model.acknowledged += 1;
    },
  },
  {
    name: "delete",
    weight: 1,
    async run(client, model, worker) {
      const tracked = model.pick(worker, true);
      if (!tracked?.id) return;
      tracked.inDoubt = { exists: false, v: tracked.acked.v };
      const res = await call(client, "DELETE", `/v1/contacts/${tracked.id}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      tracked.acked = { exists: false, v: tracked.acked.v };
      tracked.inDoubt = undefined;
      model.acknowledged += 1;
    },
  },
  {
    // One transaction of 20–50 upserts: new phones and version bumps of existing contacts.
    name: "batch",
    weight: 2,
    async run(client, model, worker) {
      const size = 20 + Math.floor(Math.random() * 31);
      const existing = model.pickMany(worker, true, Math.floor(size / 2));
      const batch: Tracked[] = [...existing];
      for (const tracked of existing) tracked.inDoubt = { exists: true, v: tracked.acked.v + 1 };
      while (batch.length < size) {
        const phone = model.newPhone(worker);
        const tracked: Tracked = {
          phone,
          id: undefined,
          acked: { exists: false, v: 0 },
          inDoubt: { exists: true, v: 0 },
        };
        model.contacts.set(phone, tracked);
        batch.push(tracked);
      }
      model.batchesInDoubt.push(batch);
      const res = await call(client, "POST", "/v1/contacts/batch", {
        mode: "upsert",
        from: client.accountPhoneNumberId,
        contacts: batch.map((t) => ({ phone_number: t.phone, ...versionBody(t.phone, t.inDoubt!.v) })),
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const results = res.body.data as Array<{ index: number; status: string; id?: string }>;
      assert.equal(results.length, batch.length);
      for (const [i, tracked] of batch.entries()) {
        const result = results[i]!;
        const expected = tracked.acked.exists ? "updated" : "created";
        assert.equal(result.status, expected, `batch item ${i}: ${JSON.stringify(result)}`);
        if (tracked.id !== undefined) assert.equal(result.id, tracked.id, "an upsert changed a contact's id");
        tracked.id = result.id;
        tracked.acked = tracked.inDoubt!;
        tracked.inDoubt = undefined;
      }
      model.batchesInDoubt.splice(model.batchesInDoubt.indexOf(batch), 1);
      model.acknowledged += 1;
      model.batchesAcknowledged += 1;
    },
  },
];

function pickKind(): OperationKind {
  const total = OPERATION_KINDS.reduce((sum, k) => sum + k.weight, 0);
  let roll = Math.random() * total;
  for (const kind of OPERATION_KINDS) {
    roll -= kind.weight;
    if (roll < 0) return kind;
  }
  return OPERATION_KINDS[0]!;
}

/** Writes until the server goes away; a non-2xx answer (not a kill) fails the test. */
async function worker(client: Client, model: Model, index: number): Promise<void> {
  for (;;) {
    try {
      await pickKind().run(client, model, index);
    } catch (error) {
      if (error instanceof ServerGone) return;
      throw error;
    }
  }
}

/** After a restart: every tracked contact is in its acknowledged state or in its in-doubt state, whole. */
async function verify(client: Client, model: Model, dbFile: string): Promise<void> {
  // Which side of its in-doubt request each contact was found on (true: applied).
  const applied = new Map<Tracked, boolean>();
  for (const tracked of model.contacts.values()) {
    const res = await call(client, "GET", `/v1/contacts?phone=${encodeURIComponent(tracked.phone)}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const items = res.body.data as Array<{
      id: string;
      name: string;
      metadata: { v?: number; tag?: string };
    }>;
    assert.ok(items.length <= 1, `two contacts for ${tracked.phone}`);
    const item = items[0];
    let actual: State;
    if (item) {
      const nameVersion = Number(/ v(\d+)$/.exec(item.name)?.[1]);
      assert.equal(
        item.metadata.v,
        nameVersion,
        `half-written contact ${tracked.phone}: ${JSON.stringify(item)}`,
      );
      assert.equal(item.metadata.tag, `t${nameVersion}`, `half-written metadata ${JSON.stringify(item)}`);
      if (tracked.id !== undefined) assert.equal(item.id, tracked.id, "a contact changed its id");
      actual = { exists: true, v: nameVersion };
    } else {
      actual = { exists: false, v: tracked.acked.v };
    }
    const same = (a: State, b: State | undefined) =>
      b !== undefined && a.exists === b.exists && (!a.exists || a.v === b.v);
    assert.ok(
      same(actual, tracked.acked) || same(actual, tracked.inDoubt),
      `${tracked.phone}: found ${JSON.stringify(actual)}, acknowledged ${JSON.stringify(tracked.acked)}, in doubt ${JSON.stringify(tracked.inDoubt)}`,
    );
    if (tracked.inDoubt) {
      model.inDoubtResolved += 1;
      applied.set(tracked, same(actual, tracked.inDoubt));
    }
    tracked.acked = actual;
    tracked.inDoubt = undefined;
    if (item) tracked.id = item.id;
  }
  // A batch is one transaction: all of its items were applied, or none.
  for (const batch of model.batchesInDoubt) {
    const sides = batch.map((t) => applied.get(t));
    assert.ok(
      sides.every((side) => side === true) || sides.every((side) => side === false),
      `batch of ${batch.length} applied in part: ${batch.map((t, i) => `${t.phone}=${sides[i]}`).join(", ")}`,
    );
    if (sides[0]) model.batchesApplied += 1;
    else model.batchesAbsent += 1;
  }
  model.batchesInDoubt.length = 0;
  // Nothing that no client created.
  const db = new SqliteDatabase(dbFile, { readonly: true });
  try {
    const phones = db.prepare("SELECT phone_number FROM contacts").pluck().all() as string[];
    for (const phone of phones) assert.ok(model.contacts.has(phone), `unexpected contact ${phone}`);
    const live = [...model.contacts.values()].filter((c) => c.acked.exists).length;
    assert.equal(phones.length, live);
  } finally {
    db.close();
  }
}

function integrityCheck(dbFile: string): void {
  // Opened read-write, as the server would: the WAL left by the kill is recovered first.
  const db = new SqliteDatabase(dbFile);
  try {
    assert.equal(db.pragma("integrity_check", { simple: true }), "ok");
    assert.deepEqual(db.pragma("foreign_key_check"), []);
  } finally {
    db.close();
  }
}

/** A fresh SQLite store with one organisation (no rate limits), an API key and an account. */
async function seedStore(dbFile: string): Promise<Omit<Client, "url">> {
  const store = createSqliteStore(dbFile);
  await store.migrate();
  const org = await createOrganization(store.db, { name: "Crash Co" });
  // Rate limits (when present) must not throttle the writers.
  await updateOrganization(store.db, org.id, {
    rate_limits: { read_per_minute: 1_000_000, write_per_minute: 1_000_000 },
  });
  const { key } = await createApiKey(store.db, org.id, {});
  const account = await createAccount(store.db, org.id, {
    phone_number_id: "200000000000001",
    phone_number: "+628111999000",
  });
  await store.close();
  return { auth: { authorization: `Bearer ${key}` }, accountPhoneNumberId: account.phone_number_id };
}

describe("crash safety: SIGKILL during writes [sqlite]", () => {
  let dir: string;
  let dbFile: string;
  let client: Omit<Client, "url">;
  let server: ServerProcess | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "phonebook-crash-"));
    dbFile = join(dir, "phonebook.db");
    client = await seedStore(dbFile);
  });

  after(async () => {
    await server?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  test(`${KILLS} kills at random moments lose no acknowledged write and leave nothing half-written`, async () => {
    const model = new Model();
    const env = { DATA_DIR: dir, LOG_LEVEL: "warn" };
    let kills = 0;
    for (let round = 0; round < KILLS; round++) {
      server = await startServerProcess({ ...env, LOG_LEVEL: "info" });
      const c: Client = { ...client, url: server.url };
      await verify(c, model, dbFile);
      const writers = Array.from({ length: WORKERS }, (_, i) => worker(c, model, i));
      await new Promise((r) => setTimeout(r, 150 + Math.random() * 1200));
      await server.kill("SIGKILL");
      kills += 1;
      await Promise.all(writers);
      integrityCheck(dbFile);
    }
    server = await startServerProcess({ ...env, LOG_LEVEL: "info" });
    await verify({ ...client, url: server.url }, model, dbFile);
    await server.kill("SIGTERM");
    integrityCheck(dbFile);
    console.log(
      `# crash: ${kills} SIGKILLs survived; ${model.acknowledged} acknowledged writes all present; ` +
        `${model.inDoubtResolved} in-flight writes found whole or absent; ${model.contacts.size} contacts tracked; ` +
        `batches: ${model.batchesAcknowledged} acknowledged, of those in flight ${model.batchesApplied} applied whole, ${model.batchesAbsent} absent whole`,
    );
    assert.ok(model.acknowledged > 0, "the writers got acknowledgements before the kills");
  });
});

interface ImportOut {
  id: string;
  status: string;
  total_rows: number;
  processed_rows: number;
  created: number;
  updated: number;
  unchanged: number;
  failed_rows: number;
  errors: unknown[];
  failure: string | null;
}

describe("crash safety: SIGKILL during an import [sqlite]", () => {
  let dir: string;
  let dbFile: string;
  let client: Omit<Client, "url">;
  let server: ServerProcess | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "phonebook-crash-import-"));
    dbFile = join(dir, "phonebook.db");
    client = await seedStore(dbFile);
  });

  after(async () => {
    await server?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  test(`an import of ${IMPORT_ROWS} rows killed while it runs resumes and completes with exact counts`, async () => {
    // info: the helper waits for the "Server listening" line.
    const env = { DATA_DIR: dir, LOG_LEVEL: "info" };
    const prefix = "+62813";
    const phones = Array.from({ length: IMPORT_ROWS }, (_, i) => `${prefix}${String(i).padStart(7, "0")}`);
    const csv = `phone_number,name,tier\n${phones.map((p, i) => `${p},Imported ${i},t${i % 7}`).join("\n")}\n`;

    server = await startServerProcess(env);
    let c: Client = { ...client, url: server.url };
    const posted = await fetch(`${c.url}/v1/imports?phone_number_id=${c.accountPhoneNumberId}&mode=upsert`, {
      method: "POST",
      headers: { ...c.auth, "content-type": "text/csv" },
      body: csv,
    });
    const postedBody = (await posted.json()) as { data: ImportOut };
    assert.equal(posted.status, 202, JSON.stringify(postedBody));
    const id = postedBody.data.id;

    // Kill at a random moment after the runner has taken the import (≈ 6,000 rows/s here).
    for (;;) {
      const res = await call(c, "GET", `/v1/imports/${id}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const status = (res.body.data as unknown as ImportOut).status;
      assert.ok(status === "queued" || status === "running", `the import ended before the kill: ${status}`);
      if (status === "running") break;
      await new Promise((r) => setTimeout(r, 10));
    }
    await new Promise((r) => setTimeout(r, Math.random() * Math.min(1500, IMPORT_ROWS / 20)));
    await server.kill("SIGKILL");
    integrityCheck(dbFile);
    // What the kill left: the import running, rows remaining (else the kill interrupted nothing).
    const killedAt = (() => {
      const db = new SqliteDatabase(dbFile, { readonly: true });
      try {
        return db.prepare("SELECT status, processed_rows, total_rows FROM imports WHERE id = ?").get(id) as {
          status: string;
          processed_rows: number;
          total_rows: number;
        };
      } finally {
        db.close();
      }
    })();
    assert.equal(
      killedAt.status,
      "running",
      `the kill did not interrupt the import: ${JSON.stringify(killedAt)}`,
    );
    assert.ok(
      killedAt.processed_rows < IMPORT_ROWS,
      `no rows remained at the kill: ${JSON.stringify(killedAt)}`,
    );

    if (!RELIABILITY) {
      // The dead runner's lease lasts IMPORT_LEASE_MS after its last commit and the
      // server has no setting for it: let that time pass by moving the lease's end
      // into the past (what a clock IMPORT_LEASE_MS later would see). Reliability
      // mode waits for the real expiry instead.
      const db = new SqliteDatabase(dbFile);
      try {
        const changed = db
          .prepare("UPDATE imports SET lease_until = ? WHERE id = ? AND status = 'running'")
          .run(Date.now() - 1, id).changes;
        assert.equal(changed, 1, "the killed import is left running under the dead runner's lease");
      } finally {
        db.close();
      }
    }

    server = await startServerProcess(env);
    c = { ...client, url: server.url };
    const afterRestart = (await call(c, "GET", `/v1/imports/${id}`)).body.data as unknown as ImportOut;
    const deadline = Date.now() + IMPORT_LEASE_MS + 60_000;
    let done: ImportOut;
    for (;;) {
      const res = await call(c, "GET", `/v1/imports/${id}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      done = res.body.data as unknown as ImportOut;
      if (done.status === "completed" || done.status === "failed") break;
      assert.ok(Date.now() < deadline, `the import did not resume and complete: ${JSON.stringify(done)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    await server.kill("SIGTERM");
    integrityCheck(dbFile);

    assert.equal(done.status, "completed", JSON.stringify(done));
    assert.equal(done.total_rows, IMPORT_ROWS);
    assert.equal(done.processed_rows, IMPORT_ROWS);
    assert.equal(done.created + done.updated + done.unchanged + done.failed_rows, done.processed_rows);
    assert.equal(done.created, IMPORT_ROWS, JSON.stringify(done));
    assert.equal(done.failed_rows, 0, JSON.stringify(done.errors));

    const db = new SqliteDatabase(dbFile, { readonly: true });
    try {
      const rows = db
        .prepare("SELECT phone_number, display_name FROM contacts WHERE phone_number LIKE ?")
        .all(`${prefix}%`) as Array<{ phone_number: string; display_name: string | null }>;
      assert.equal(rows.length, IMPORT_ROWS, "contacts of the import: none lost, none twice");
      assert.equal(new Set(rows.map((r) => r.phone_number)).size, IMPORT_ROWS);
      const expected = new Set(phones);
      for (const row of rows) assert.ok(expected.has(row.phone_number), `unexpected ${row.phone_number}`);
    } finally {
      db.close();
    }
    console.log(
      `# crash import: killed at ${killedAt.processed_rows}/${IMPORT_ROWS} committed rows; after restart ` +
        `${afterRestart.status} at ${afterRestart.processed_rows}; completed: created ${done.created}, ` +
        `updated ${done.updated}, unchanged ${done.unchanged}, failed ${done.failed_rows}; ${IMPORT_ROWS} contacts, no duplicates`,
    );
  });
});
