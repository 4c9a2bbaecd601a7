import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { generateSecret, signatureHeaders } from "../../src/domain/webhook-signing.ts";
import { spawnNode, stopChild } from "../helpers/children.ts";
import { freePort } from "../helpers/processes.ts";

/**
 * The 10-line receiver of docs/webhooks.md ("Verifying a request") is run as
 * written (only its port changed) and sent requests signed by Phonebook's own
 * signing code: a body with non-ASCII names, split between two chunks inside
 * a character, is accepted; a wrong signature, a changed body and an old
 * timestamp are refused.
 */
const DOC = join(import.meta.dirname, "..", "..", "docs", "webhooks.md");
const block = /A receiver in 10 lines[\s\S]*?```js\n([\s\S]*?)```/.exec(readFileSync(DOC, "utf8"))?.[1] ?? "";
const secret = generateSecret();
let dir: string;
let port: number;
let child: ReturnType<typeof spawnNode>;
let output = "";

before(async () => {
  assert.ok(block.includes(".listen(8080)"), "the example block is found");
  dir = mkdtempSync(join(tmpdir(), "pb-receiver-"));
  port = await freePort();
  const file = join(dir, "receiver.mjs");
  writeFileSync(file, block.replace(".listen(8080)", `.listen(${port}, () => console.log("listening"))`));
  child = spawnNode([file], { env: { PATH: process.env.PATH ?? "", PHONEBOOK_WEBHOOK_SECRET: secret } });
  child.stdout?.on("data", (c: Buffer) => {
    output += c.toString();
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on("data", () => {
      if (output.includes("listening")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`the example exited with ${code}`)));
  });
});
after(async () => {
  if (child) await stopChild(child);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** POSTs `body` in two chunks, split at `splitAt` bytes, with `headers`; resolves with the status. */
function send(body: Buffer, headers: Record<string, string>, splitAt: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        method: "POST",
        headers: { ...headers, "content-type": "application/json" },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.write(body.subarray(0, splitAt));
    // A separate write after a turn of the event loop, so the receiver sees two chunks.
    setTimeout(() => req.end(body.subarray(splitAt)), 20);
  });
}

test("the documented receiver is at most 10 lines and verifies Phonebook-Signature on raw bytes", async () => {
  assert.ok(block.trim().split("\n").length <= 10, block);
  const body = Buffer.from(
    JSON.stringify({ id: "evt_1", type: "contact.updated", data: { contact: { name: "Zoë Müller 🙂" } } }),
  );
  const t = Math.floor(Date.now() / 1000);
  const headers = signatureHeaders([secret], "evt_1", t, body.toString("utf8"));
  const inside = body.indexOf(Buffer.from("ë")) + 1; // the middle of a two-byte character
  assert.equal(await send(body, { ...headers }, inside), 200);
  // During a rotation the header carries two signatures; one matching is enough.
  const rotated = signatureHeaders([generateSecret(), secret], "evt_1", t, body.toString("utf8"));
  assert.equal(await send(body, { ...rotated }, inside), 200);
  const wrong = signatureHeaders([generateSecret()], "evt_1", t, body.toString("utf8"));
  assert.equal(await send(body, { ...wrong }, 10), 400);
  const changed = Buffer.from(body.toString("utf8").replace("Zoë", "Zoe"));
  assert.equal(await send(changed, { ...headers }, 10), 400);
  const old = signatureHeaders([secret], "evt_1", t - 600, body.toString("utf8"));
  assert.equal(await send(body, { ...old }, 10), 400);
  assert.match(output, /contact\.updated/);
});
