/**
 * Crash safety of the embedded store: the real server process is killed with
 * SIGKILL at a random moment while several clients write, then restarted and
 * checked. Every write that got a 2xx must be there; a write in flight at the
 * kill may be there or not, but never in part (a contact's name and metadata
 * carry the same version number, written by one PATCH); no contact appears
 * that no client created; the SQLite file passes `PRAGMA integrity_check` and
 * `foreign_key_check`. Scale: PB_CRASH_KILLS (npm test: 3, reliability: 25).
 *
 * Operation kinds are a table (OPERATION_KINDS): batch upserts and imports
 * join by adding an entry that marks the contacts it touches as in doubt
 * before sending and acknowledged after a 2xx.
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
import { scaled } from "../helpers/reliability.ts";
import { type ServerProcess, startServerProcess } from "../helpers/server-process.ts";

const KILLS = scaled("PB_CRASH_KILLS", 3, 25);
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
  acknowledged = 0;
  inDoubtResolved = 0;
  private next = 0;

  newPhone(worker: number): string {
    this.next += 1;
    return `+62812${String(worker)}${String(this.next).padStart(6, "0")}`;
  }

  /** A contact of this worker with no request in doubt. */
  pick(worker: number, exists: boolean): Tracked | undefined {
    const mine = [...this.contacts.values()].filter(
      (c) => c.phone.startsWith(`+62812${worker}`) && c.inDoubt === undefined && c.acked.exists === exists,
    );
    return mine[Math.floor(Math.random() * mine.length)];
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
    if (tracked.inDoubt) model.inDoubtResolved += 1;
    tracked.acked = actual;
    tracked.inDoubt = undefined;
    if (item) tracked.id = item.id;
  }
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

describe("crash safety: SIGKILL during writes [sqlite]", () => {
  let dir: string;
  let dbFile: string;
  let client: Omit<Client, "url">;
  let server: ServerProcess | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "phonebook-crash-"));
    dbFile = join(dir, "phonebook.db");
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
    client = { auth: { authorization: `Bearer ${key}` }, accountPhoneNumberId: account.phone_number_id };
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
        `${model.inDoubtResolved} in-flight writes found whole or absent; ${model.contacts.size} contacts tracked`,
    );
    assert.ok(model.acknowledged > 0, "the writers got acknowledgements before the kills");
  });
});
