import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { PG_ADMIN_URL, storeKinds } from "../helpers/env.ts";
import { freePort } from "../helpers/processes.ts";

const ROOT = join(import.meta.dirname, "..", "..");

/** Runs `phonebook serve` (a real process) and waits for it to exit on its own (generous deadline). */
function serve(
  env: Record<string, string>,
): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["bin/phonebook.js", "serve"], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", LOG_LEVEL: "info", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`serve did not exit within 60 s:\n${stdout}\n${stderr}`));
    }, 60_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** One line on stderr, no stack trace, exit 1. */
function assertOneClearLine(result: { code: number | null; stderr: string }, pattern: RegExp) {
  assert.equal(result.code, 1, result.stderr);
  const lines = result.stderr.trim().split("\n");
  assert.equal(lines.length, 1, result.stderr);
  assert.doesNotMatch(result.stderr, /\n\s+at |Error: .*\n.*node_modules/);
  assert.match(lines[0]!, pattern);
}

describe("a start that cannot work says why in one line", () => {
  test("PORT already in use", async () => {
    const blocker = createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => blocker.listen(port, "127.0.0.1", resolve));
    const dir = mkdtempSync(join(tmpdir(), "phonebook-port-"));
    try {
      const result = await serve({ PORT: String(port), DATA_DIR: dir });
      assertOneClearLine(
        result,
        new RegExp(`^Error: PORT ${port} is already in use on 127\\.0\\.0\\.1: .*set PORT`),
      );
    } finally {
      blocker.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  if (storeKinds().includes("postgres")) {
    const base = new URL(PG_ADMIN_URL);

    test("DATABASE_URL: nothing listens on the port", async () => {
      const url = new URL(base);
      url.port = String(await freePort());
      const result = await serve({ PORT: "0", DATABASE_URL: url.toString() });
      assertOneClearLine(
        result,
        /^Error: DATABASE_URL \(.*\): nothing accepts connections at .* \(connection refused\): start PostgreSQL there/,
      );
    });

    test("DATABASE_URL: the database does not exist", async () => {
      const url = new URL(base);
      url.pathname = "/pb_missing_database";
      const result = await serve({ PORT: "0", DATABASE_URL: url.toString() });
      assertOneClearLine(
        result,
        /^Error: DATABASE_URL \(.*\): PostgreSQL at .* has no database "pb_missing_database": create it \(createdb /,
      );
    });

    test("DATABASE_URL: the role does not exist", async () => {
      const url = new URL(base);
      url.username = "pb_no_such_role";
      const result = await serve({ PORT: "0", DATABASE_URL: url.toString() });
      assertOneClearLine(
        result,
        /^Error: DATABASE_URL \(.*\): PostgreSQL at .* refused the role pb_no_such_role .*: put an existing role in DATABASE_URL/,
      );
    });

    test("the README's example DATABASE_URL either works or the error says what to change", async () => {
      const readme = readFileSync(join(ROOT, "README.md"), "utf8");
      const example = /^DATABASE_URL=(\S+) npm start$/m.exec(readme)?.[1];
      assert.ok(example, "README shows DATABASE_URL=… npm start");
      // The example's database is one the reader creates first (the README says how);
      // this machine has not, so the start must say exactly that.
      const url = new URL(example);
      assert.equal(url.hostname, "127.0.0.1");
      assert.match(readme, new RegExp(`createdb[^\\n]*${url.pathname.slice(1)}`));
      const result = await serve({ PORT: "0", DATABASE_URL: example });
      if (result.code === null || result.code === 1) {
        assertOneClearLine(result, /^Error: DATABASE_URL .*(create it|start PostgreSQL|existing role)/);
      }
    });
  }
});
