import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { Webhook } from "standardwebhooks";
import { verifyWebhook, WebhookVerificationError } from "../../sdk/src/index.ts";

/**
 * verifyWebhook against signatures computed here, the way the server signs
 * (docs/api.md, "Outbound webhooks"): HMAC-SHA256 keyed with the base64-decoded
 * part of `whsec_…`; and against the standardwebhooks package's own signer.
 */
const newSecret = () => `whsec_${randomBytes(24).toString("base64")}`;
const keyOf = (secret: string) => Buffer.from(secret.slice("whsec_".length), "base64");
const body = JSON.stringify({
  id: "evt_01JABCDEFGHJKMNPQRSTVWXYZ0",
  type: "contact.updated",
  created_at: "2026-12-02T16:00:00.000Z",
  data: { contact: { id: "ctc_01JABCDEFGHJKMNPQRSTVWXYZ0", name: "Ana ✓" }, changed_fields: ["name"] },
});
const NOW = 1_796_227_200;

function phonebookSignature(secret: string, t: number, raw = body): string {
  return createHmac("sha256", keyOf(secret)).update(`${t}.${raw}`).digest("hex");
}
function standardSignature(secret: string, id: string, t: number, raw = body): string {
  return createHmac("sha256", keyOf(secret)).update(`${id}.${t}.${raw}`).digest("base64");
}
const rejects = (fn: () => unknown, reason: WebhookVerificationError["reason"]) =>
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof WebhookVerificationError, String(error));
    assert.equal(error.reason, reason);
    return true;
  });

describe("verifyWebhook: Phonebook-Signature", () => {
  test("a valid signature returns the parsed event; string, Buffer and Headers all work", () => {
    const secret = newSecret();
    const header = `t=${NOW},v1=${phonebookSignature(secret, NOW)}`;
    const event = verifyWebhook(body, { "Phonebook-Signature": header }, secret, { now: NOW });
    assert.equal(event.type, "contact.updated");
    assert.equal(event.id, "evt_01JABCDEFGHJKMNPQRSTVWXYZ0");
    const headers = new Headers({ "phonebook-signature": header });
    assert.deepEqual(verifyWebhook(Buffer.from(body), headers, secret, { now: NOW + 299 }), event);
  });

  test("several v1 signatures (a rotation): one matching is enough; a list of secrets is accepted", () => {
    const old = newSecret();
    const current = newSecret();
    const header = `t=${NOW},v1=${phonebookSignature(old, NOW)},v1=${phonebookSignature(current, NOW)}`;
    assert.ok(verifyWebhook(body, { "phonebook-signature": header }, current, { now: NOW }));
    assert.ok(verifyWebhook(body, { "phonebook-signature": header }, old, { now: NOW }));
    const onlyOld = `t=${NOW},v1=${phonebookSignature(old, NOW)}`;
    assert.ok(verifyWebhook(body, { "phonebook-signature": onlyOld }, [current, old], { now: NOW }));
  });

  test("a wrong secret, a changed body, an old or future timestamp, a malformed header are refused", () => {
    const secret = newSecret();
    const header = `t=${NOW},v1=${phonebookSignature(secret, NOW)}`;
    rejects(
      () => verifyWebhook(body, { "phonebook-signature": header }, newSecret(), { now: NOW }),
      "no_matching_signature",
    );
    rejects(
      () =>
        verifyWebhook(body.replace("Ana", "Eve"), { "phonebook-signature": header }, secret, { now: NOW }),
      "no_matching_signature",
    );
    rejects(
      () =>
        verifyWebhook(JSON.stringify(JSON.parse(body), null, 2), { "phonebook-signature": header }, secret, {
          now: NOW,
        }),
      "no_matching_signature",
    );
    rejects(
      () => verifyWebhook(body, { "phonebook-signature": header }, secret, { now: NOW + 301 }),
      "timestamp_out_of_tolerance",
    );
    rejects(
      () => verifyWebhook(body, { "phonebook-signature": header }, secret, { now: NOW - 301 }),
      "timestamp_out_of_tolerance",
    );
    rejects(
      () =>
        verifyWebhook(body, { "phonebook-signature": `v1=${phonebookSignature(secret, NOW)}` }, secret, {
          now: NOW,
        }),
      "invalid_header",
    );
    rejects(
      () => verifyWebhook(body, { "phonebook-signature": `t=${NOW},v1=zz` }, secret, { now: NOW }),
      "invalid_header",
    );
    // A signature for another timestamp does not verify under this one.
    const shifted = `t=${NOW + 1},v1=${phonebookSignature(secret, NOW)}`;
    rejects(
      () => verifyWebhook(body, { "phonebook-signature": shifted }, secret, { now: NOW }),
      "no_matching_signature",
    );
    rejects(() => verifyWebhook(body, {}, secret, { now: NOW }), "missing_headers");
  });
});

describe("verifyWebhook: Standard Webhooks headers", () => {
  test("signatures computed here verify; Node's header object with arrays works", () => {
    const secret = newSecret();
    const id = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";
    const headers = {
      "webhook-id": id,
      "webhook-timestamp": String(NOW),
      "webhook-signature": `v1,${standardSignature(secret, id, NOW)}`,
    };
    assert.equal(verifyWebhook(body, headers, secret, { now: NOW }).type, "contact.updated");
    const rotated = {
      ...headers,
      "webhook-signature": [`v1,${standardSignature(newSecret(), id, NOW)}`, headers["webhook-signature"]],
    };
    assert.ok(verifyWebhook(body, rotated, secret, { now: NOW }));
    rejects(
      () => verifyWebhook(body, { ...headers, "webhook-id": "msg_other" }, secret, { now: NOW }),
      "no_matching_signature",
    );
    rejects(() => verifyWebhook(body, headers, secret, { now: NOW + 400 }), "timestamp_out_of_tolerance");
    rejects(
      () => verifyWebhook(body, { ...headers, "webhook-signature": "v2,abc" }, secret, { now: NOW }),
      "invalid_header",
    );
  });

  test("what the standardwebhooks package signs verifies here, and what verifies here verifies there", () => {
    const secret = newSecret();
    const signer = new Webhook(secret);
    const id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const at = new Date(NOW * 1000);
    const signature = signer.sign(id, at, body);
    const headers = {
      "webhook-id": id,
      "webhook-timestamp": String(NOW),
      "webhook-signature": `${signature} v1,bm90LWl0`,
    };
    assert.equal(verifyWebhook(body, headers, secret, { now: NOW }).type, "contact.updated");
    // The package checks against the real clock: sign for now and let both verify.
    const nowSeconds = Math.floor(Date.now() / 1000);
    const live = {
      "webhook-id": id,
      "webhook-timestamp": String(nowSeconds),
      "webhook-signature": `v1,${standardSignature(secret, id, nowSeconds)}`,
    };
    assert.ok(signer.verify(body, live));
    assert.ok(verifyWebhook(body, live, secret));
  });

  test("with both header sets, either valid set is enough; neither valid is refused", () => {
    const secret = newSecret();
    const id = "msg_both";
    const both = {
      "phonebook-signature": `t=${NOW},v1=${"0".repeat(64)}`,
      "webhook-id": id,
      "webhook-timestamp": String(NOW),
      "webhook-signature": `v1,${standardSignature(secret, id, NOW)}`,
    };
    assert.ok(verifyWebhook(body, both, secret, { now: NOW }));
    const phonebookOnlyValid = {
      ...both,
      "phonebook-signature": `t=${NOW},v1=${phonebookSignature(secret, NOW)}`,
      "webhook-signature": "v1,AAAA",
    };
    assert.ok(verifyWebhook(body, phonebookOnlyValid, secret, { now: NOW }));
    rejects(
      () => verifyWebhook(body, { ...both, "webhook-signature": "v1,AAAA" }, secret, { now: NOW }),
      "no_matching_signature",
    );
  });
});
