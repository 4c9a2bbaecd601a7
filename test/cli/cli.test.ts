import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { describe, test } from "node:test";
import { runCli } from "../../src/cli/main.ts";
import { spawnNode, waitForLine } from "../helpers/children.ts";
import { storeKinds } from "../helpers/env.ts";
import { createTestStore } from "../helpers/harness.ts";

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

/** Starts `phonebook serve` as a real process and resolves once it listens (it dies with this process). */
async function serve(
  env: Record<string, string>,
): Promise<{ child: ChildProcess; output: () => string; url: string }> {
  const child = spawnNode(["bin/phonebook.js", "serve"], {
    env: { ...process.env, PORT: "0", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const match = await waitForLine(child, /Server listening at (http:\/\/127\.0\.0\.1:\d+)/, {
    onLine: (line) => {
      output += `${line}\n`;
    },
    describe: () => output,
  });
  return { child, output: () => output, url: match[1]! };
}

for (const kind of storeKinds()) {
  describe(`phonebook CLI [${kind}]`, () => {
    test("org, key and account commands, human and --json", async () => {
      const store = await createTestStore(kind);
      try {
        await store.store.close();
        const org = await cli(["org", "create", "--name", "CLI Co", "--json"], store.env);
        assert.equal(org.code, 0, org.err);
        const orgId = JSON.parse(org.out).id as string;
        assert.match(orgId, /^org_/);
        const key = await cli(["key", "create", "--org", orgId, "--label", "ci", "--json"], store.env);
        assert.equal(key.code, 0, key.err);
        assert.match(JSON.parse(key.out).key, /^pb_live_[A-Za-z0-9_-]{32}$/);
        const human = await cli(
          [
            "account",
            "add",
            "--org",
            orgId,
            "--phone-number-id",
            "106540352242922",
            "--phone-number",
            "+62 811 1222 333",
          ],
          store.env,
        );
        assert.equal(human.code, 0, human.err);
        assert.match(human.out, /\+628111222333/);
        const list = await cli(["account", "list", "--org", orgId, "--json"], store.env);
        assert.equal(JSON.parse(list.out)[0].phone_number_id, "106540352242922");
        const dup = await cli(
          [
            "account",
            "add",
            "--org",
            orgId,
            "--phone-number-id",
            "106540352242922",
            "--phone-number",
            "+628111222334",
            "--json",
          ],
          store.env,
        );
        assert.equal(dup.code, 1);
        assert.equal(JSON.parse(dup.err).error.code, "account_exists");
        const missing = await cli(["key", "create"], store.env);
        assert.equal(missing.code, 2);
        assert.match(missing.err, /--org is required/);
        const unknown = await cli(["frobnicate"], store.env);
        assert.equal(unknown.code, 2);
        const badConfig = await cli(["migrate"], { ...store.env, PORT: "nope" });
        assert.equal(badConfig.code, 1);
        assert.match(badConfig.err, /PORT/);
        const migrate = await cli(["migrate", "--json"], store.env);
        assert.deepEqual(JSON.parse(migrate.out), { ok: true });
      } finally {
        await store.drop();
      }
    });

    test("serve: the first start prints one working key, the second none; SIGTERM exits cleanly", async () => {
      const store = await createTestStore(kind);
      try {
        await store.store.close();
        const first = await serve(store.env);
        const key = /(pb_live_[A-Za-z0-9_-]{32})/.exec(first.output())?.[1];
        assert.ok(key, first.output());
        const me = await fetch(`${first.url}/v1/me`, { headers: { authorization: `Bearer ${key}` } });
        assert.equal(me.status, 200);
        assert.equal(
          first.output().split(key!).length - 1,
          2,
          "the key is printed once (banner and curl hint), never logged",
        );
        first.child.kill("SIGTERM");
        const [code] = await once(first.child, "exit");
        assert.equal(code, 0, first.output());
        const second = await serve(store.env);
        assert.doesNotMatch(second.output(), /pb_live_/);
        second.child.kill("SIGTERM");
        await once(second.child, "exit");
      } finally {
        await store.drop();
      }
    });
  });
}
