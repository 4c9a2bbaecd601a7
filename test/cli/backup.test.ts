import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { runCli } from "../../src/cli/main.ts";
import { createContact } from "../../src/domain/contacts.ts";
import { createSqliteStore } from "../../src/store/store.ts";
import { storeKinds } from "../helpers/env.ts";
import { createTestStore, seedOrganization } from "../helpers/harness.ts";

async function cli(argv: string[], env: Record<string, string>) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(
    argv,
    { LOG_LEVEL: "silent", ...env },
    { out: (l) => out.push(l), err: (l) => err.push(l) },
  );
  return { code, out: out.join("\n"), err: err.join("\n") };
}

if (storeKinds().includes("sqlite")) {
  test("phonebook backup copies a live SQLite store: the copy opens and holds the same contacts", async () => {
    const ts = await createTestStore("sqlite");
    const dir = mkdtempSync(join(tmpdir(), "phonebook-backup-"));
    try {
      await ts.store.migrate();
      const t = await seedOrganization(ts.store.db, {
        name: "Backup Co",
        phoneNumberId: "5560001",
        phoneNumber: "+628111000201",
      });
      const scope = { db: ts.store.db, organizationId: t.orgId };
      for (let i = 0; i < 200; i++) {
        await createContact(
          scope,
          t.account,
          { phone_number: `+628140${String(i).padStart(6, "0")}` },
          "api",
        );
      }
      // The store stays open (and in WAL mode) while the backup runs, as under a running server.
      const file = join(dir, "copy.db");
      const result = await cli(["backup", file, "--json"], ts.env);
      assert.equal(result.code, 0, result.err);
      assert.equal(JSON.parse(result.out).store, "sqlite");
      const copy = createSqliteStore(file);
      try {
        const ids = async (db: typeof ts.store.db) =>
          (await db.selectFrom("contacts").select(["id", "phone_number"]).orderBy("id").execute()).map(
            (r) => `${r.id} ${r.phone_number}`,
          );
        const original = await ids(ts.store.db);
        assert.equal(original.length, 200);
        assert.deepEqual(await ids(copy.db), original);
      } finally {
        await copy.close();
      }
      const again = await cli(["backup", file], ts.env);
      assert.equal(again.code, 1);
      assert.match(again.err, /exists; name a new file/);
      const nowhere = await cli(["backup", join(dir, "x.db")], { DATA_DIR: join(dir, "empty") });
      assert.equal(nowhere.code, 1);
      assert.match(nowhere.err, /There is no store at .*set DATA_DIR/);
    } finally {
      await ts.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

if (storeKinds().includes("postgres") && existsSync("/usr/bin/pg_dump")) {
  test("phonebook backup on PostgreSQL runs pg_dump --format=custom; pg_restore reads the file", async () => {
    const ts = await createTestStore("postgres", { migrated: true });
    const dir = mkdtempSync(join(tmpdir(), "phonebook-backup-"));
    try {
      await ts.store.migrate();
      await seedOrganization(ts.store.db, {
        name: "Dump Co",
        phoneNumberId: "5560002",
        phoneNumber: "+628111000202",
      });
      const file = join(dir, "dump.pgc");
      const result = await cli(["backup", file], ts.env);
      assert.equal(result.code, 0, result.err);
      assert.match(result.out, /pg_dump --format=custom/);
      const listing = execFileSync("pg_restore", ["--list", file], { encoding: "utf8" });
      assert.match(listing, /TABLE DATA public contacts/);
    } finally {
      await ts.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
