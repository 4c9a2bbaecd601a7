import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { generateSchema, SCHEMA_FILE } from "../../sdk/scripts/generate.ts";

test("sdk/src/schema.ts equals a fresh generation from the served OpenAPI document (run `npm run sdk:generate`)", async () => {
  const fresh = await generateSchema();
  const checkedIn = readFileSync(SCHEMA_FILE, "utf8");
  assert.ok(fresh.includes('"/v1/contacts/{id}"'), "the generation covers the contact routes");
  assert.ok(
    checkedIn === fresh,
    "sdk/src/schema.ts is out of date: run `npm run sdk:generate` and commit it",
  );
});

test("the built package (@phonebook/client, compiled by npm install's prepare step) exports the client", async () => {
  const sdk = await import("@phonebook/client");
  assert.equal(typeof sdk.Phonebook, "function");
  assert.equal(typeof sdk.verifyWebhook, "function");
  assert.equal(typeof sdk.PhonebookError, "function");
});
