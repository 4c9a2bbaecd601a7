import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type CliIo, runCli } from "../../src/cli/main.ts";
import { progressBar } from "../../src/cli/transfer.ts";
import { createAccount } from "../../src/domain/accounts.ts";
import { createOrganization } from "../../src/domain/organizations.ts";
import { storeKinds } from "../helpers/env.ts";
import { createTestStore, type TestStore } from "../helpers/harness.ts";

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  const progress: string[] = [];
  const written: string[] = [];
  const io: CliIo = {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    progress: (l) => progress.push(l),
    write: async (c) => {
      written.push(c);
    },
  };
  return { io, out, err, progress, written };
}

test("the progress bar", () => {
  assert.equal(progressBar(0, 0, 10), "[##########] 100%  0/0 rows");
  assert.equal(progressBar(2500, 10000, 10), "[###-------]  25%  2,500/10,000 rows");
});

for (const kind of storeKinds()) {
  describe(`phonebook import / export [${kind}]`, () => {
    let ts: TestStore;
    let dir: string;
    let pnid: string;
    let env: Record<string, string>;
    before(async () => {
      ts = await createTestStore(kind, { migrated: true });
      await ts.store.migrate();
      const org = await createOrganization(ts.store.db, { name: "CLI Co" });
      pnid = `${700000000 + process.pid}`;
      await createAccount(ts.store.db, org.id, { phone_number_id: pnid, phone_number: "+628111777000" });
      dir = mkdtempSync(join(tmpdir(), "phonebook-cli-"));
      env = { LOG_LEVEL: "silent", ...ts.env };
    });
    after(async () => {
      await ts.drop();
      rmSync(dir, { recursive: true, force: true });
    });

    test("import shows progress and a summary; export writes what was imported", async () => {
      const file = join(dir, "people.csv");
      const rows = ["phone_number,name,email,city"];
      for (let i = 0; i < 1200; i++)
        rows.push(`+62840${String(i).padStart(7, "0")},Person ${i},p${i}@example.com,Bandung`);
      rows.push("not-a-phone,Nobody,,");
      writeFileSync(file, `${rows.join("\n")}\n`);
      const human = capture();
      assert.equal(await runCli(["import", file, "--account", pnid], env, human.io), 0, human.err.join("\n"));
      assert.ok(
        human.progress.some((p) => p.includes("100%  1,201/1,201 rows")),
        human.progress.join("|"),
      );
      const summary = human.out.join("\n");
      assert.match(summary, /1,201 of 1,201 rows: 1,200 created, 0 updated, 0 unchanged, 1 failed/);
      assert.match(summary, /row 1201 \(line 1202\): invalid_phone_number/);

      const machine = capture();
      const code = await runCli(
        ["import", file, "--account", pnid, "--mode", "upsert", "--json"],
        env,
        machine.io,
      );
      assert.equal(code, 0);
      const result = JSON.parse(machine.out.join(""));
      assert.equal(result.object, "import");
      assert.deepEqual(
        [result.created, result.updated, result.unchanged, result.failed_rows, result.processed_rows],
        [0, 0, 1200, 1, 1201],
      );

      const csv = capture();
      assert.equal(await runCli(["export", "--account", pnid], env, csv.io), 0);
      const text = csv.written.join("");
      assert.equal(text.trimEnd().split("\r\n").length, 1201, "header + 1,200 contacts");
      assert.match(text, /\+628400000007,Person 7,,p7@example\.com,,"\{""city"":""Bandung""\}"/);
      const nd = capture();
      assert.equal(await runCli(["export", "--account", pnid, "--json"], env, nd.io), 0);
      const lines = nd.written.join("").trimEnd().split("\n");
      assert.equal(lines.length, 1200);
      assert.equal(JSON.parse(lines[0]!).object, "contact");

      const back = join(dir, "back.csv");
      writeFileSync(back, text);
      const again = capture();
      assert.equal(
        await runCli(["import", back, "--account", pnid, "--mode", "upsert", "--json"], env, again.io),
        0,
      );
      const roundTrip = JSON.parse(again.out.join(""));
      assert.deepEqual(
        [roundTrip.unchanged, roundTrip.failed_rows],
        [1200, 0],
        "export → import changes nothing",
      );
    });

    test("usage and lookup errors", async () => {
      const noFile = capture();
      assert.equal(await runCli(["import", "--account", pnid], env, noFile.io), 2);
      const missing = capture();
      assert.equal(await runCli(["import", join(dir, "nope.csv"), "--account", pnid], env, missing.io), 1);
      assert.match(missing.err.join(""), /Cannot read/);
      const unknown = capture();
      assert.equal(await runCli(["export", "--account", "123456789"], env, unknown.io), 1);
      assert.match(unknown.err.join(""), /No such account/);
      const badMode = capture();
      assert.equal(
        await runCli(["import", join(dir, "people.csv"), "--account", pnid, "--mode", "x"], env, badMode.io),
        1,
      );
    });
  });
}
