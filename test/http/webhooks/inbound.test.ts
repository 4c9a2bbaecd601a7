import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import fc from "fast-check";
import { buildRow, diffContact, type MarketingPreference } from "../../../src/domain/contacts.ts";
import { ApiError } from "../../../src/errors.ts";
import {
  parseDelivery,
  signMetaPayload,
  verifyMetaSignature,
} from "../../../src/http/webhooks/meta-delivery.ts";

const FIXTURES = join(import.meta.dirname, "..", "..", "fixtures", "meta");
const raw = (name: string) => readFileSync(join(FIXTURES, `${name}.json`));

describe("Meta signature", () => {
  const secret = "s3cret-for-tests";
  const body = raw("inbound-text");

  test("accepts the HMAC-SHA256 of the exact bytes, in either hex case", () => {
    const signature = signMetaPayload(secret, body);
    assert.match(signature, /^sha256=[0-9a-f]{64}$/);
    assert.equal(verifyMetaSignature(secret, body, signature), true);
    assert.equal(verifyMetaSignature(secret, body, `sha256=${signature.slice(7).toUpperCase()}`), true);
    assert.equal(verifyMetaSignature(secret, body, ` ${signature} `), true);
  });

  test("refuses anything else", () => {
    const signature = signMetaPayload(secret, body);
    const changed = Buffer.from(body);
    changed[10] = changed[10]! ^ 1;
    for (const header of [
      undefined,
      "",
      "sha256=",
      signature.slice(7),
      signature.slice(0, -1),
      `${signature}0`,
      signature.replace("sha256=", "sha1="),
      signMetaPayload("other-secret", body),
    ]) {
      assert.equal(verifyMetaSignature(secret, body, header), false, String(header));
    }
    assert.equal(verifyMetaSignature(secret, changed, signature), false);
  });
});

describe("parseDelivery", () => {
  test("reads contacts, identity changes and preferences from the fixtures", () => {
    const text = parseDelivery(raw("inbound-text"));
    assert.equal(text.changes.length, 1);
    assert.deepEqual(text.changes[0]!.contacts, [
      {
        wa_id: "6281234567890",
        user_id: "ID.13491208655302741918",
        parent_user_id: undefined,
        profile_name: "Siti Rahma",
        username: undefined,
      },
    ]);
    const moved = parseDelivery(raw("system-user-changed-number")).changes[0]!;
    assert.deepEqual(moved.identity_changes, [
      {
        type: "user_changed_number",
        previous: { wa_id: "6281234567890", user_id: "ID.13491208655302741918" },
        next: { wa_id: "6289876543210", user_id: "ID.77700000000000000001", parent_user_id: undefined },
      },
    ]);
    const renamed = parseDelivery(raw("system-user-changed-user-id")).changes[0]!;
    assert.deepEqual(renamed.identity_changes[0]!.previous, {
      wa_id: undefined,
      user_id: "ID.88012345678901234567",
    });
    assert.equal(renamed.identity_changes[0]!.next.parent_user_id, "ID.ENT.50684729301582440001");
    const stop = parseDelivery(raw("user-preferences-stop")).changes[0]!;
    assert.deepEqual(stop.preferences, [
      { wa_id: "6281234567890", user_id: undefined, opt_out: true, at: 1763792000_000 },
    ]);
    const status = parseDelivery(raw("status-delivered")).changes[0]!;
    assert.equal(status.contacts.length + status.identity_changes.length + status.preferences.length, 0);
    assert.equal(parseDelivery(raw("inbound-two-contacts")).changes.length, 2);
  });

  test("the digest names the content: equal changes share it, different ones do not", () => {
    const a = parseDelivery(raw("inbound-text")).changes[0]!.digest;
    assert.equal(parseDelivery(raw("inbound-text")).changes[0]!.digest, a);
    assert.notEqual(parseDelivery(raw("inbound-bsuid-only")).changes[0]!.digest, a);
    const [x, y] = parseDelivery(raw("inbound-two-contacts")).changes;
    assert.notEqual(x!.digest, y!.digest);
  });

  test("skips what it does not act on; treats an empty profile name as absent", () => {
    const delivery = parseDelivery(
      Buffer.from(
        JSON.stringify({
          object: "whatsapp_business_account",
          entry: [
            {
              changes: [
                { field: "account_update", value: { anything: [1, 2] } },
                {
                  field: "messages",
                  value: {
                    metadata: { phone_number_id: "123456" },
                    contacts: [{ wa_id: "6281300000001", profile: { name: "  " } }],
                    messages: [
                      { type: "system", system: { type: "customer_identity_changed" }, from: "1" },
                      { type: "image", image: {} },
                    ],
                  },
                },
                {
                  field: "user_preferences",
                  value: {
                    metadata: { phone_number_id: "123456" },
                    user_preferences: [{ wa_id: "1", category: "other", value: "stop", timestamp: 1 }],
                  },
                },
              ],
            },
          ],
        }),
      ),
    );
    assert.equal(delivery.changes.length, 2);
    assert.equal(delivery.changes[0]!.contacts[0]!.profile_name, undefined);
    assert.equal(delivery.changes[0]!.identity_changes.length, 0);
    assert.equal(delivery.changes[1]!.preferences.length, 0);
  });

  test("bad input is a coded 400, never another kind of error", () => {
    fc.assert(
      fc.property(fc.json(), (json) => {
        try {
          parseDelivery(Buffer.from(json));
        } catch (error) {
          assert.ok(error instanceof ApiError, String(error));
          assert.equal(error.status, 400);
        }
      }),
      { numRuns: 300 },
    );
    // Near-valid deliveries: the right envelope with arbitrary values where the details go.
    const anyOf = <T>(arb: fc.Arbitrary<T>) => fc.oneof(fc.jsonValue(), arb);
    const item = fc.dictionary(
      fc.constantFrom(
        "wa_id",
        "user_id",
        "parent_user_id",
        "profile",
        "type",
        "system",
        "from",
        "category",
        "value",
        "timestamp",
      ),
      fc.oneof(
        fc.jsonValue(),
        fc.constantFrom("system", "user_changed_number", "marketing_messages", "stop", "6281300000001"),
        fc.dictionary(fc.constantFrom("type", "wa_id", "user_id", "name", "username"), fc.jsonValue()),
      ),
    );
    const value = fc.record(
      {
        metadata: anyOf(fc.record({ phone_number_id: anyOf(fc.constant("123456")) })),
        contacts: anyOf(fc.array(item, { maxLength: 3 })),
        messages: anyOf(fc.array(item, { maxLength: 3 })),
        user_preferences: anyOf(fc.array(item, { maxLength: 3 })),
        statuses: fc.jsonValue(),
      },
      { requiredKeys: [] },
    );
    const delivery = fc.record({
      object: anyOf(fc.constant("whatsapp_business_account")),
      entry: anyOf(
        fc.array(
          fc.record({
            changes: anyOf(
              fc.array(fc.record({ field: anyOf(fc.constantFrom("messages", "user_preferences")), value }), {
                maxLength: 3,
              }),
            ),
          }),
          { maxLength: 2 },
        ),
      ),
    });
    fc.assert(
      fc.property(delivery, (body) => {
        try {
          parseDelivery(Buffer.from(JSON.stringify(body)));
        } catch (error) {
          assert.ok(error instanceof ApiError, String(error));
          assert.equal(error.status, 400);
        }
      }),
      { numRuns: 1000 },
    );
    assert.throws(
      () => parseDelivery(Buffer.from("{")),
      (e: ApiError) => e.code === "invalid_json",
    );
  });
});

describe("marketing preference (diffContact)", () => {
  const at = 1_800_000_000_000;
  const fresh = () => buildRow("org_X", "wba_X", { phone_number: "+6281300000001" }, "inbound", 1000);

  test("a newer event applies; an older one is ignored; a repeat only records its time", () => {
    const row = fresh();
    const stop = diffContact(row, { marketing_preference: { opt_out: true, at: 5000 } }, at);
    assert.deepEqual(stop.changed, ["marketing_opt_out"]);
    assert.equal(stop.set.marketing_opt_out, 1);
    assert.equal(stop.set.marketing_opt_out_at, 5000);
    assert.equal(stop.set.updated_at, at);
    const stopped = { ...row, ...stop.set };
    const older = diffContact(stopped, { marketing_preference: { opt_out: false, at: 4000 } }, at + 1);
    assert.deepEqual(older, { set: {}, changed: [] });
    const repeat = diffContact(stopped, { marketing_preference: { opt_out: true, at: 6000 } }, at + 1);
    assert.deepEqual(repeat, { set: { marketing_opt_out_at: 6000 }, changed: [] });
  });

  test("buildRow takes the preference of a new contact", () => {
    const row = buildRow("org_X", "wba_X", { marketing_preference: { opt_out: true, at: 7 } }, "inbound", 1);
    assert.equal(row.marketing_opt_out, 1);
    assert.equal(row.marketing_opt_out_at, 7);
  });

  test("any arrival order ends in the newest event's choice (stop wins a tie)", () => {
    const event = fc.record({ opt_out: fc.boolean(), at: fc.integer({ min: 0, max: 20 }) });
    fc.assert(
      fc.property(fc.array(event, { minLength: 1, maxLength: 12 }), (events: MarketingPreference[]) => {
        let row = fresh();
        for (const e of events) row = { ...row, ...diffContact(row, { marketing_preference: e }, at).set };
        const newest = Math.max(...events.map((e) => e.at));
        const expected = events.some((e) => e.at === newest && e.opt_out) ? 1 : 0;
        assert.equal(row.marketing_opt_out, expected);
        assert.equal(row.marketing_opt_out_at, newest);
      }),
      { numRuns: 500 },
    );
  });
});
