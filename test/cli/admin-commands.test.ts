import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { type CliIo, runCli } from "../../src/cli/main.ts";
import { loadConfig, PACKAGE_ROOT } from "../../src/config.ts";
import { createContact } from "../../src/domain/contacts.ts";
import { createLabel } from "../../src/domain/labels.ts";
import { spawnChild, stopChild } from "../helpers/children.ts";
import { storeKinds } from "../helpers/env.ts";
import { createTestStore, seedOrganization } from "../helpers/harness.ts";

const ROOT = join(import.meta.dirname, "..", "..");

async function cli(argv: string[], env: Record<string, string>, answer?: string) {
  const out: string[] = [];
  const err: string[] = [];
  const written: string[] = [];
  const io: CliIo = {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    progress: () => {},
    write: async (c) => {
      written.push(c);
    },
    ask: async () => answer,
  };
  const code = await runCli(argv, { LOG_LEVEL: "silent", ...env }, io);
  return { code, out: out.join("\n"), err: err.join("\n"), written: written.join("") };
}

test("a relative DATA_DIR is resolved against the Phonebook directory, not the working directory", () => {
  const config = loadConfig({ DATA_DIR: "data" });
  assert.equal(config.dataDir, join(PACKAGE_ROOT, "data"));
  assert.equal(PACKAGE_ROOT, ROOT);
});

for (const kind of storeKinds()) {
  describe(`phonebook key list, account remove, org delete, import/export account choice [${kind}]`, () => {
    test("key list shows keys and their state; revoke shows in it", async () => {
      const ts = await createTestStore(kind, { migrated: true });
      try {
        await ts.store.migrate();
        const t = await seedOrganization(ts.store.db, {
          name: "Keys Co",
          phoneNumberId: "5550001",
          phoneNumber: "+628111000001",
        });
        const created = await cli(["key", "create", "--org", t.orgId, "--label", "ci", "--json"], ts.env);
        const { id: keyId, last4 } = JSON.parse(created.out) as { id: string; last4: string };
        assert.equal((await cli(["key", "revoke", keyId], ts.env)).code, 0);
        const human = await cli(["key", "list", "--org", t.orgId], ts.env);
        assert.equal(human.code, 0, human.err);
        // last4 is base64url: it may hold "-" (a regex metacharacter only inside a class; escaped anyway).
        const shown = last4.replace(/[-\\^$.*+?()[\]{}|]/g, "\\$&");
        assert.match(human.out, new RegExp(`${keyId}  …${shown}  revoked  .*  ci`));
        assert.match(human.err, /^Store: (SQLite at .*phonebook\.db|PostgreSQL at postgres:\/\/)/);
        const machine = JSON.parse((await cli(["key", "list", "--org", t.orgId, "--json"], ts.env)).out);
        assert.equal(machine.length, 2);
        assert.deepEqual(machine.map((k: { state: string }) => k.state).sort(), ["active", "revoked"]);
        assert.ok(machine.every((k: object) => !("key" in k) && !("key_hash" in k)));
      } finally {
        await ts.drop();
      }
    });

    test("account add --default-country and account set read local numbers of the account's contacts", async () => {
      const ts = await createTestStore(kind);
      try {
        await ts.store.migrate();
        const org = JSON.parse((await cli(["org", "create", "--name", "Lokal", "--json"], ts.env)).out);
        const added = await cli(
          [
            "account",
            "add",
            "--org",
            org.id,
            "--phone-number-id",
            "5550009",
            "--phone-number",
            "0811-1000-009",
            "--default-country",
            "id",
          ],
          ts.env,
        );
        assert.equal(added.code, 0, added.err);
        assert.match(added.out, /Connected \+628111000009 .*; local numbers are read in ID/);
        const listed = JSON.parse((await cli(["account", "list", "--org", org.id, "--json"], ts.env)).out);
        assert.deepEqual(
          listed.map((a: { phone_number: string; default_country: string }) => [
            a.phone_number,
            a.default_country,
          ]),
          [["+628111000009", "ID"]],
        );
        // The import reads the file's local numbers in the account's country.
        const dir = mkdtempSync(join(tmpdir(), "phonebook-cli-country-"));
        const file = join(dir, "local.csv");
        writeFileSync(file, "phone_number,name\n0812-2000-0001,Ani\n");
        const imported = await cli(["import", file, "--json"], ts.env);
        assert.equal(imported.code, 0, imported.err);
        const exported = await cli(["export"], ts.env);
        assert.match(exported.written, /\n[^,\n]+,'?\+6281220000001,Ani,/);
        // account set: by phone_number_id or id; "none" clears; a bad code is refused in words.
        const cleared = await cli(
          ["account", "set", "5550009", "--default-country", "none", "--json"],
          ts.env,
        );
        assert.equal(cleared.code, 0, cleared.err);
        assert.equal(JSON.parse(cleared.out).default_country, null);
        const bad = await cli(["account", "set", "5550009", "--default-country", "Indonesia"], ts.env);
        assert.equal(bad.code, 1);
        assert.match(bad.err, /ISO 3166-1 alpha-2/);
        const set = await cli(
          ["account", "set", JSON.parse(cleared.out).id, "--default-country", "GB"],
          ts.env,
        );
        assert.equal(set.code, 0, set.err);
        assert.match(set.out, /default country GB/);
        const badStatus = await cli(["account", "set", "5550009", "--status", "sleeping"], ts.env);
        assert.equal(badStatus.code, 2);
        assert.match(badStatus.err, /--status must be one of connected, disconnected, onboarding/);
        const nothing = await cli(["account", "set", "5550009"], ts.env);
        assert.equal(nothing.code, 2);
        rmSync(dir, { recursive: true, force: true });
      } finally {
        await ts.drop();
      }
    });

    test("import and export pick the only account; with several they list them", async () => {
      const ts = await createTestStore(kind, { migrated: true });
      try {
        await ts.store.migrate();
        const t = await seedOrganization(ts.store.db, {
          name: "Solo Co",
          phoneNumberId: "5550002",
          phoneNumber: "+628111000002",
        });
        await createContact(
          { db: ts.store.db, organizationId: t.orgId },
          t.account,
          { phone_number: "+628122000001", display_name: "Ann" },
          "api",
        );
        const exported = await cli(["export"], ts.env);
        assert.equal(exported.code, 0, exported.err);
        assert.match(exported.err, /Account: 5550002 \(\+628111000002\), the only one/);
        assert.match(exported.written, /\+628122000001,Ann/);
        await seedOrganization(ts.store.db, {
          name: "Other Co",
          phoneNumberId: "5550003",
          phoneNumber: "+628111000003",
        });
        const several = await cli(["export"], ts.env);
        assert.equal(several.code, 2);
        assert.match(several.err, /--account is required: there are several accounts.*5550002.*5550003/s);
        const byOrg = await cli(["export", "--org", t.orgId], ts.env);
        assert.equal(byOrg.code, 0, byOrg.err);
      } finally {
        await ts.drop();
      }
    });

    test("account remove and org delete ask first, then erase; what remains is only the others' data", async () => {
      const ts = await createTestStore(kind);
      try {
        await ts.store.migrate();
        const db = ts.store.db;
        const a = await seedOrganization(db, {
          name: "Gone Co",
          phoneNumberId: "5550004",
          phoneNumber: "+628111000004",
        });
        const b = await seedOrganization(db, {
          name: "Stays Co",
          phoneNumberId: "5550005",
          phoneNumber: "+628111000005",
        });
        for (const t of [a, b]) {
          const scope = { db, organizationId: t.orgId };
          const label = await createLabel(scope, { name: "vip" });
          for (let i = 0; i < 3; i++) {
            await createContact(
              scope,
              t.account,
              { phone_number: `+62812200010${i}`, label_ids: [label.id] },
              "api",
            );
          }
        }
        // Not confirmed: nothing happens.
        const refused = await cli(["account", "remove", "5550004"], ts.env, undefined);
        assert.equal(refused.code, 2);
        assert.match(refused.err, /Refusing without confirmation: pass --yes/);
        const wrong = await cli(["org", "delete", a.orgId], ts.env, "no");
        assert.equal(wrong.code, 2);
        assert.match(wrong.err, /Not confirmed; nothing was erased/);
        const count = async (orgId: string) =>
          Number(
            (
              await db
                .selectFrom("contacts")
                .select((eb) => eb.fn.countAll<number>().as("n"))
                .where("organization_id", "=", orgId)
                .executeTakeFirstOrThrow()
            ).n,
          );
        assert.equal(await count(a.orgId), 3);
        // Typed confirmation.
        const removed = await cli(["account", "remove", "5550004", "--json"], ts.env, "5550004");
        assert.equal(removed.code, 0, removed.err);
        assert.equal(JSON.parse(removed.out).erased.contacts, 3);
        assert.equal(await count(a.orgId), 0);
        const deleted = await cli(["org", "delete", a.orgId, "--yes"], ts.env);
        assert.equal(deleted.code, 0, deleted.err);
        assert.match(
          deleted.out,
          /Deleted organization .*; erased 1 labels, 2 api keys|Deleted organization .*; erased .*labels/,
        );
        assert.equal(
          await db.selectFrom("organizations").where("id", "=", a.orgId).selectAll().executeTakeFirst(),
          undefined,
        );
        assert.equal(
          await db.selectFrom("labels").where("organization_id", "=", a.orgId).selectAll().executeTakeFirst(),
          undefined,
        );
        assert.equal(
          await db
            .selectFrom("api_keys")
            .where("organization_id", "=", a.orgId)
            .selectAll()
            .executeTakeFirst(),
          undefined,
        );
        assert.equal(await count(b.orgId), 3);
        const links = await db.selectFrom("contact_labels").select("contact_id").execute();
        assert.equal(links.length, 3);
        const again = await cli(["org", "delete", a.orgId, "--yes", "--json"], ts.env);
        assert.equal(again.code, 1);
        assert.equal(JSON.parse(again.err).error.code, "resource_not_found");
      } finally {
        await ts.drop();
      }
    });
  });
}

if (storeKinds().includes("sqlite")) {
  test("phonebook export | head: the reader leaving early ends the export quietly (exit 0, no EPIPE)", async () => {
    const ts = await createTestStore("sqlite");
    let child: ChildProcess | undefined;
    try {
      await ts.store.migrate();
      const t = await seedOrganization(ts.store.db, {
        name: "Pipe Co",
        phoneNumberId: "5550006",
        phoneNumber: "+628111000006",
      });
      const scope = { db: ts.store.db, organizationId: t.orgId };
      await ts.store.transaction(async (tx) => {
        for (let i = 0; i < 3000; i++) {
          await createContact(
            { ...scope, db: tx },
            t.account,
            { phone_number: `+628130${String(i).padStart(6, "0")}`, display_name: `Person ${i}` },
            "api",
          );
        }
      });
      await ts.store.close();
      // Its own process group, killed by the helpers if the test fails.
      const exporter = spawnChild(process.execPath, ["bin/phonebook.js", "export", "--account", "5550006"], {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? "", LOG_LEVEL: "silent", ...ts.env },
        stdio: ["ignore", "pipe", "pipe"],
      });
      child = exporter;
      const stdout = exporter.stdout!;
      let stderr = "";
      exporter.stderr!.on("data", (d: Buffer) => {
        stderr += d.toString();
      });
      const exited = new Promise<number | null>((resolve) => exporter.once("exit", (code) => resolve(code)));
      // Like `head -1`: read the first line, then close the pipe.
      const first = await new Promise<string>((resolve) => {
        let seen = "";
        stdout.on("data", (d: Buffer) => {
          seen += d.toString();
          if (seen.includes("\n")) {
            stdout.destroy();
            resolve(seen.split("\n")[0]!);
          }
        });
      });
      assert.match(first, /^id,phone_number,name/);
      const deadline = setTimeout(() => exporter.kill("SIGKILL"), 60_000);
      const code = await exited;
      clearTimeout(deadline);
      assert.equal(code, 0, stderr);
      assert.doesNotMatch(stderr, /EPIPE|Error|\n\s+at /, stderr);
    } finally {
      if (child) await stopChild(child);
      await ts.drop();
    }
  });
}
