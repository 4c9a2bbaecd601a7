import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import { buildApp } from "../../../src/app.ts";
import { loadConfig } from "../../../src/config.ts";
import { createAccount } from "../../../src/domain/accounts.ts";
import { pruneInboundReceipts, RECEIPT_RETENTION_MS } from "../../../src/domain/inbound.ts";
import { createOrganization } from "../../../src/domain/organizations.ts";
import { signMetaPayload } from "../../../src/http/webhooks/meta-delivery.ts";
import { newId } from "../../../src/ids.ts";
import { attachLabels } from "../../../src/store/repositories/contacts.ts";
import { storeKinds } from "../../helpers/env.ts";
import { createHarness, createTestStore, type Harness, type Json } from "../../helpers/harness.ts";
import { type InboundPerson, messagesDelivery } from "../../helpers/meta-delivery.ts";
import { scaled } from "../../helpers/reliability.ts";

const SECRET = "test-app-secret-0123456789";
const VERIFY_TOKEN = "test-verify-token-abc";
const FIXTURE_PNID = "106540352242922";
const FIXTURES = join(import.meta.dirname, "..", "..", "fixtures", "meta");
const WEBHOOK_ENV = { META_APP_SECRET: SECRET, META_VERIFY_TOKEN: VERIFY_TOKEN };

/** A fixture's exact bytes; with `phoneNumberId`, addressed to that account instead. */
function fixture(name: string, phoneNumberId?: string): string {
  const text = readFileSync(join(FIXTURES, `${name}.json`), "utf8");
  return phoneNumberId ? text.replaceAll(FIXTURE_PNID, phoneNumberId) : text;
}

/** A `messages` delivery from one person, in Meta's shape. */
function inbound(phoneNumberId: string, person: InboundPerson, messageId?: string): string {
  return messagesDelivery(phoneNumberId, person, messageId === undefined ? {} : { messageId });
}

function preference(
  phoneNumberId: string,
  waId: string,
  value: "stop" | "resume",
  timestamp: number,
): string {
  return JSON.stringify({
    object: "whatsapp_business_account",
    entry: [
      {
        id: "102290129340398",
        changes: [
          {
            field: "user_preferences",
            value: {
              messaging_product: "whatsapp",
              metadata: { display_phone_number: "628111222333", phone_number_id: phoneNumberId },
              user_preferences: [{ wa_id: waId, category: "marketing_messages", value, timestamp }],
            },
          },
        ],
      },
    ],
  });
}

interface Ctx {
  h: Harness;
  auth: { authorization: string };
  orgId: string;
  pnid: string;
  accountId: string;
}

function post(h: Harness, body: string, signature: string | null = signMetaPayload(SECRET, body)) {
  return h.inject({
    method: "POST",
    url: "/webhooks/whatsapp",
    headers: {
      "content-type": "application/json",
      ...(signature === null ? {} : { "x-hub-signature-256": signature }),
    },
    payload: body,
  });
}

async function postOk(h: Harness, body: string): Promise<Json> {
  const res = await post(h, body);
  assert.equal(res.statusCode, 200, res.body);
  return res.json();
}

async function contactsOf(ctx: Ctx, query = ""): Promise<Json[]> {
  const res = await ctx.h.inject({
    method: "GET",
    url: `/v1/${ctx.pnid}/contacts?limit=100${query}`,
    headers: ctx.auth,
  });
  assert.equal(res.statusCode, 200, res.body);
  return res.json().data;
}

async function rowCount(h: Harness, table: "contacts" | "inbound_receipts"): Promise<number> {
  const row = await h.store.db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<number | string>().as("n"))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Deliveries in the burst test: 200 in `npm test`, 1,000 in the slow tier (PB_RELIABILITY=1). */
const BURST = scaled("PB_BURST_DELIVERIES", 200, 1000);

for (const kind of storeKinds()) {
  describe(`Meta webhook ingestion [${kind}]`, () => {
    let h: Harness;
    /** The fixtures' own account (106540352242922), used by the fixture walk-through. */
    let main: Ctx;

    before(async () => {
      h = await createHarness(kind, WEBHOOK_ENV);
      main = await newAccount(FIXTURE_PNID);
    });
    after(async () => {
      await h.close();
    });

    /** A fresh organisation and account, so that each test owns its data. */
    async function newAccount(phoneNumberId?: string): Promise<Ctx> {
      const tenant = await h.tenant();
      const account = await h.account(tenant.orgId, phoneNumberId ? { phoneNumberId } : {});
      return {
        h,
        auth: tenant.auth,
        orgId: tenant.orgId,
        pnid: account.phoneNumberId,
        accountId: account.id,
      };
    }

    test("GET handshake echoes hub.challenge as text/plain only for the right token", async () => {
      const ok = await h.inject({
        method: "GET",
        url: `/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=${VERIFY_TOKEN}&hub.challenge=1158201444`,
      });
      assert.equal(ok.statusCode, 200, ok.body);
      assert.equal(ok.body, "1158201444");
      assert.match(String(ok.headers["content-type"]), /^text\/plain/);
      const bad = [
        `hub.mode=subscribe&hub.verify_token=wrong-token&hub.challenge=1`,
        `hub.mode=subscribe&hub.verify_token=${VERIFY_TOKEN}x&hub.challenge=1`,
        `hub.mode=unsubscribe&hub.verify_token=${VERIFY_TOKEN}&hub.challenge=1`,
        `hub.mode=subscribe&hub.challenge=1`,
        `hub.mode=subscribe&hub.verify_token=${VERIFY_TOKEN}`,
        "",
      ];
      for (const query of bad) {
        const res = await h.inject({ method: "GET", url: `/webhooks/whatsapp?${query}` });
        assert.equal(res.statusCode, 403, `${query}: ${res.body}`);
        assert.equal(res.json().error.code, "forbidden");
        assert.notEqual(res.body, "1");
      }
    });

    test("every fixture, signed, in order: contacts, identity changes, preferences", async () => {
      const ctx = main;
      // inbound-text: a person known by phone and BSUID.
      let body = await postOk(h, fixture("inbound-text"));
      assert.equal(body.created, 1);
      let [siti] = await contactsOf(ctx, "&phone=%2B6281234567890");
      assert.ok(siti);
      assert.equal(siti.source, "inbound");
      assert.equal(siti.profile_name, "Siti Rahma");
      assert.equal(siti.name, "Siti Rahma");
      assert.equal(siti.business_scoped_user_id, "ID.13491208655302741918");
      assert.equal(siti.wa_id, "6281234567890");
      assert.equal(siti.marketing_opt_out, false);

      // inbound-bsuid-only: no phone at all, still a contact.
      body = await postOk(h, fixture("inbound-bsuid-only"));
      assert.equal(body.created, 1);
      let [budi] = await contactsOf(ctx, "&search=budi");
      assert.equal(budi.phone_number, null);
      assert.equal(budi.wa_id, null);
      assert.equal(budi.username, "@budi.coffee");
      assert.equal(budi.parent_business_scoped_user_id, "ID.ENT.50684729301582440001");
      assert.equal(budi.business_scoped_user_id, "ID.88012345678901234567");

      // inbound-two-contacts: one change for this account, one for an unknown number.
      body = await postOk(h, fixture("inbound-two-contacts"));
      assert.equal(body.created, 1);
      assert.deepEqual(body.unknown_phone_number_ids, ["999000111222333"]);
      assert.equal((await contactsOf(ctx, "&search=agus")).length, 1);
      assert.equal((await contactsOf(ctx, "&search=stranger")).length, 0);

      // status-delivered: nothing new.
      const before = await rowCount(h, "contacts");
      body = await postOk(h, fixture("status-delivered"));
      assert.equal(body.created, 0);
      assert.equal(await rowCount(h, "contacts"), before);

      // user-preferences stop, then resume (newer).
      await postOk(h, fixture("user-preferences-stop"));
      [siti] = await contactsOf(ctx, "&phone=%2B6281234567890");
      assert.equal(siti.marketing_opt_out, true);
      await postOk(h, fixture("user-preferences-resume"));
      [siti] = await contactsOf(ctx, "&phone=%2B6281234567890");
      assert.equal(siti.marketing_opt_out, false);

      // system-user-changed-number: same contact, new phone and BSUID.
      body = await postOk(h, fixture("system-user-changed-number"));
      assert.equal(body.created, 0);
      const [moved] = await contactsOf(ctx, "&phone=%2B6289876543210");
      assert.equal(moved.id, siti.id);
      assert.equal(moved.business_scoped_user_id, "ID.77700000000000000001");
      assert.equal(moved.profile_name, "Siti Rahma");
      assert.equal((await contactsOf(ctx, "&phone=%2B6281234567890")).length, 0);

      // system-user-changed-user-id: same contact, new BSUID.
      body = await postOk(h, fixture("system-user-changed-user-id"));
      assert.equal(body.created, 0);
      [budi] = await contactsOf(ctx, "&search=budi");
      assert.equal(budi.business_scoped_user_id, "ID.99900000000000000002");
      assert.equal(budi.username, "@budi.coffee");

      assert.equal((await contactsOf(ctx)).length, 3, "Siti, Budi and Agus; nobody twice");
    });

    test("a bad, missing or foreign signature is 401 and stores nothing", async () => {
      const ctx = await newAccount();
      const raw = fixture("inbound-text", ctx.pnid);
      const other = fixture("inbound-bsuid-only", ctx.pnid);
      const receipts = await rowCount(h, "inbound_receipts");
      const cases: Array<[string, string | null]> = [
        ["missing", null],
        ["empty", ""],
        ["another secret", signMetaPayload("not-the-secret", raw)],
        ["another body", signMetaPayload(SECRET, other)],
        ["no prefix", signMetaPayload(SECRET, raw).slice("sha256=".length)],
        ["sha1", `sha1=${signMetaPayload(SECRET, raw).slice(7, 47)}`],
        ["truncated", signMetaPayload(SECRET, raw).slice(0, -2)],
        ["not hex", `sha256=${"z".repeat(64)}`],
      ];
      for (const [what, signature] of cases) {
        const res = await post(h, raw, signature);
        assert.equal(res.statusCode, 401, `${what}: ${res.body}`);
        assert.equal(res.json().error.code, "invalid_signature");
      }
      // A body changed by one byte after signing.
      const tampered = await post(h, raw.replace("Siti Rahma", "Siti Rahmb"), signMetaPayload(SECRET, raw));
      assert.equal(tampered.statusCode, 401);
      // Garbage is refused before it is parsed: 401, not 400.
      assert.equal((await post(h, "{not json", null)).statusCode, 401);
      assert.equal((await contactsOf(ctx)).length, 0);
      assert.equal(await rowCount(h, "inbound_receipts"), receipts);
      // Upper-case hex is the same signature.
      const upper = `sha256=${signMetaPayload(SECRET, raw).slice(7).toUpperCase()}`;
      assert.equal((await post(h, raw, upper)).statusCode, 200);
      assert.equal((await contactsOf(ctx)).length, 1);
    });

    test("replaying a delivery changes nothing; a repeated observation does not bump updated_at", async () => {
      const ctx = await newAccount();
      const raw = fixture("inbound-text", ctx.pnid);
      const first = await postOk(h, raw);
      assert.equal(first.created, 1);
      const [contact] = await contactsOf(ctx);
      await new Promise((r) => setTimeout(r, 5));
      for (let i = 0; i < 3; i++) {
        const again = await postOk(h, raw);
        assert.equal(again.created, 0);
        assert.equal(again.duplicates, 1);
      }
      // The same person in a new message (another delivery): matched, nothing changes.
      const fresh = await postOk(
        h,
        inbound(ctx.pnid, { wa_id: "6281234567890", user_id: "ID.13491208655302741918", name: "Siti Rahma" }),
      );
      assert.equal(fresh.created, 0);
      assert.equal(fresh.updated, 0);
      const after = await contactsOf(ctx);
      assert.equal(after.length, 1);
      assert.equal(after[0].updated_at, contact.updated_at);
      // Parallel redeliveries of one new delivery: one contact.
      const burst = inbound(ctx.pnid, { wa_id: "6281300000001", name: "Parallel" });
      const results = await Promise.all(Array.from({ length: 12 }, () => post(h, burst)));
      for (const res of results) assert.equal(res.statusCode, 200, res.body);
      assert.equal(
        results.reduce((n, res) => n + res.json().created, 0),
        1,
      );
      assert.equal((await contactsOf(ctx, "&search=parallel")).length, 1);
    });

    test("receipts past their retention are pruned; a later redelivery is still harmless", async () => {
      const ctx = await newAccount();
      const raw = fixture("inbound-text", ctx.pnid);
      await postOk(h, raw);
      const ofAccount = () =>
        h.store.db
          .selectFrom("inbound_receipts")
          .select("digest")
          .where("account_id", "=", ctx.accountId)
          .execute();
      assert.equal((await ofAccount()).length, 1);
      await h.store.db
        .updateTable("inbound_receipts")
        .set({ received_at: Date.now() - RECEIPT_RETENTION_MS - 1000 })
        .where("account_id", "=", ctx.accountId)
        .execute();
      assert.ok((await pruneInboundReceipts(h.store.db, Date.now())) >= 1);
      assert.equal((await ofAccount()).length, 0);
      const again = await postOk(h, raw);
      assert.equal(again.duplicates, 0);
      assert.equal(again.created, 0);
      assert.equal(again.updated, 0);
      assert.equal((await contactsOf(ctx)).length, 1);
    });

    test("the same person on two numbers is two contacts, each with its own preference", async () => {
      const ctx = await newAccount();
      const second = await h.account(ctx.orgId);
      await postOk(h, fixture("inbound-text", ctx.pnid));
      await postOk(h, fixture("inbound-text", second.phoneNumberId));
      await postOk(h, fixture("user-preferences-stop", ctx.pnid));
      const res = await h.inject({
        method: "GET",
        url: "/v1/contacts?phone=%2B6281234567890",
        headers: ctx.auth,
      });
      assert.equal(res.statusCode, 200, res.body);
      const byNumber = new Map<string, Json>(
        res.json().data.map((c: Json) => [c.whatsapp_account.phone_number_id, c]),
      );
      assert.equal(byNumber.size, 2);
      assert.equal(byNumber.get(ctx.pnid).marketing_opt_out, true);
      assert.equal(byNumber.get(second.phoneNumberId).marketing_opt_out, false);
      await postOk(h, fixture("system-user-changed-number", ctx.pnid));
      const [other] = await contactsOf({ ...ctx, pnid: second.phoneNumberId });
      assert.equal(other.phone_number, "+6281234567890", "a change on one number leaves the other alone");
    });

    test("a profile change is kept current without touching what the business set", async () => {
      const ctx = await newAccount();
      await postOk(h, inbound(ctx.pnid, { wa_id: "6281300000002", user_id: "ID.P1", name: "Old Name" }));
      const [created] = await contactsOf(ctx);
      const patched = await h.inject({
        method: "PATCH",
        url: `/v1/contacts/${created.id}`,
        headers: ctx.auth,
        payload: { name: "VIP Customer", metadata: { tier: "gold" } },
      });
      assert.equal(patched.statusCode, 200, patched.body);
      const body = await postOk(
        h,
        inbound(ctx.pnid, {
          wa_id: "6281300000002",
          user_id: "ID.P1",
          name: "New Name",
          username: "@newname",
        }),
      );
      assert.equal(body.updated, 1);
      const [contact] = await contactsOf(ctx);
      assert.equal(contact.id, created.id);
      assert.equal(contact.profile_name, "New Name");
      assert.equal(contact.username, "@newname");
      assert.equal(contact.display_name, "VIP Customer");
      assert.equal(contact.name, "VIP Customer");
      assert.deepEqual(contact.metadata, { tier: "gold" });
      assert.equal(contact.source, "inbound");
    });

    test("marketing preferences: newest wins whatever the arrival order", async () => {
      const ctx = await newAccount();
      // Resume (newer) arrives before stop (older): the contact stays opted in.
      await postOk(h, fixture("user-preferences-resume", ctx.pnid));
      await postOk(h, fixture("user-preferences-stop", ctx.pnid));
      let [siti] = await contactsOf(ctx);
      assert.equal(siti.marketing_opt_out, false);
      // A later stop wins; an older resume arriving afterwards does not undo it.
      await postOk(h, preference(ctx.pnid, "6281234567890", "stop", 1763795000));
      await postOk(h, preference(ctx.pnid, "6281234567890", "resume", 1763794000));
      [siti] = await contactsOf(ctx);
      assert.equal(siti.marketing_opt_out, true);
      // A repeated stop, newer, then a resume between the two stops: still out.
      await postOk(h, preference(ctx.pnid, "6281234567890", "stop", 1763797000));
      await postOk(h, preference(ctx.pnid, "6281234567890", "resume", 1763796000));
      [siti] = await contactsOf(ctx);
      assert.equal(siti.marketing_opt_out, true);
      // Same instant: stop wins.
      await postOk(h, preference(ctx.pnid, "6281234567890", "resume", 1763798000));
      await postOk(h, preference(ctx.pnid, "6281234567890", "stop", 1763798000));
      [siti] = await contactsOf(ctx);
      assert.equal(siti.marketing_opt_out, true);
      // A preference from someone never seen creates the contact with it.
      await postOk(h, preference(ctx.pnid, "6281300000003", "stop", 1763790000));
      const [stranger] = await contactsOf(ctx, "&phone=%2B6281300000003");
      assert.equal(stranger.marketing_opt_out, true);
      assert.equal(stranger.source, "inbound");
      assert.equal((await contactsOf(ctx)).length, 2);
    });

    test("the /v1 list filters on marketing_opt_out", async () => {
      const ctx = await newAccount();
      await postOk(h, inbound(ctx.pnid, { wa_id: "6281300000011", name: "Opted Out" }));
      await postOk(h, inbound(ctx.pnid, { wa_id: "6281300000012", name: "Opted In" }));
      await postOk(h, inbound(ctx.pnid, { user_id: "ID.NOPHONE1", name: "No Phone" }));
      await postOk(h, preference(ctx.pnid, "6281300000011", "stop", 1763790000));
      const out = await contactsOf(ctx, "&marketing_opt_out=true");
      assert.deepEqual(
        out.map((c) => c.profile_name),
        ["Opted Out"],
      );
      const inList = await contactsOf(ctx, "&marketing_opt_out=false");
      assert.deepEqual(inList.map((c) => c.profile_name).sort(), ["No Phone", "Opted In"]);
      const org = await h.inject({
        method: "GET",
        url: "/v1/contacts?marketing_opt_out=true",
        headers: ctx.auth,
      });
      assert.equal(org.statusCode, 200, org.body);
      assert.deepEqual(
        org.json().data.map((c: Json) => c.profile_name),
        ["Opted Out"],
      );
      const bad = await h.inject({
        method: "GET",
        url: "/v1/contacts?marketing_opt_out=yes",
        headers: ctx.auth,
      });
      assert.equal(bad.statusCode, 400, bad.body);
    });

    test("a number change then a message from the new number lands on the same contact", async () => {
      const ctx = await newAccount();
      await postOk(h, fixture("inbound-text", ctx.pnid));
      const [original] = await contactsOf(ctx);
      const label = newId("lbl");
      await h.store.db
        .insertInto("labels")
        .values({
          id: label,
          organization_id: ctx.orgId,
          name: "vip",
          name_lower: "vip",
          color: "green",
          created_at: Date.now(),
          updated_at: Date.now(),
        })
        .execute();
      await attachLabels(h.store.db, original.id, [label], Date.now());
      const patched = await h.inject({
        method: "PATCH",
        url: `/v1/contacts/${original.id}`,
        headers: ctx.auth,
        payload: { metadata: { crm: "42" } },
      });
      assert.equal(patched.statusCode, 200, patched.body);

      await postOk(h, fixture("system-user-changed-number", ctx.pnid));
      const body = await postOk(
        h,
        inbound(ctx.pnid, { wa_id: "6289876543210", user_id: "ID.77700000000000000001", name: "Siti R." }),
      );
      assert.equal(body.created, 0);
      const all = await contactsOf(ctx);
      assert.equal(all.length, 1, JSON.stringify(all));
      const [contact] = all;
      assert.equal(contact.id, original.id);
      assert.equal(contact.phone_number, "+6289876543210");
      assert.equal(contact.business_scoped_user_id, "ID.77700000000000000001");
      assert.equal(contact.profile_name, "Siti R.");
      assert.deepEqual(contact.metadata, { crm: "42" });
      assert.deepEqual(
        contact.labels.map((l: Json) => l.name),
        ["vip"],
      );
      assert.equal(contact.created_at, original.created_at);
      // Replaying the system message later is a no-op.
      const replay = await postOk(h, fixture("system-user-changed-number", ctx.pnid));
      assert.equal(replay.duplicates, 1);
      assert.equal((await contactsOf(ctx)).length, 1);
    });

    test("a message from the new number arriving before the number-change message is merged back", async () => {
      const ctx = await newAccount();
      await postOk(h, fixture("inbound-text", ctx.pnid));
      const [original] = await contactsOf(ctx);
      await h.inject({
        method: "PATCH",
        url: `/v1/contacts/${original.id}`,
        headers: ctx.auth,
        payload: { name: "Siti (VIP)" },
      });
      // Out of order: the new number writes first (a second contact appears) ...
      await postOk(
        h,
        inbound(ctx.pnid, { wa_id: "6289876543210", user_id: "ID.77700000000000000001", name: "Siti" }),
      );
      await postOk(h, preference(ctx.pnid, "6289876543210", "stop", 1763799000));
      assert.equal((await contactsOf(ctx)).length, 2);
      // ... then the system message: one contact again, the original one.
      const body = await postOk(h, fixture("system-user-changed-number", ctx.pnid));
      assert.equal(body.merged, 1);
      const all = await contactsOf(ctx);
      assert.equal(all.length, 1, JSON.stringify(all));
      assert.equal(all[0].id, original.id);
      assert.equal(all[0].phone_number, "+6289876543210");
      assert.equal(all[0].business_scoped_user_id, "ID.77700000000000000001");
      assert.equal(all[0].display_name, "Siti (VIP)");
      assert.equal(all[0].marketing_opt_out, true, "the newer opt-out seen on the new number is kept");
    });

    test("a number change onto a number the business already keeps joins the two", async () => {
      const ctx = await newAccount();
      const kept = await h.inject({
        method: "POST",
        url: `/v1/${ctx.pnid}/contacts`,
        headers: ctx.auth,
        payload: { phone_number: "+6289876543210", name: "Siti (new phone)", metadata: { crm: "9" } },
      });
      assert.equal(kept.statusCode, 201, kept.body);
      await postOk(h, fixture("inbound-text", ctx.pnid));
      await postOk(h, preference(ctx.pnid, "6281234567890", "stop", 1763799000));
      assert.equal((await contactsOf(ctx)).length, 2);
      const body = await postOk(h, fixture("system-user-changed-number", ctx.pnid));
      assert.equal(body.merged, 1);
      const all = await contactsOf(ctx);
      assert.equal(all.length, 1, JSON.stringify(all));
      assert.equal(all[0].id, kept.json().data.id);
      assert.equal(all[0].business_scoped_user_id, "ID.77700000000000000001");
      assert.equal(all[0].profile_name, "Siti Rahma");
      assert.equal(all[0].marketing_opt_out, true);
      assert.deepEqual(all[0].metadata, { crm: "9" });
    });

    test("BSUID-only, then the same person with a phone: one contact", async () => {
      const ctx = await newAccount();
      await postOk(h, fixture("inbound-bsuid-only", ctx.pnid));
      const [budi] = await contactsOf(ctx);
      assert.equal(budi.phone_number, null);
      const body = await postOk(
        h,
        inbound(ctx.pnid, { wa_id: "6281300000021", user_id: "ID.88012345678901234567", name: "Budi" }),
      );
      assert.equal(body.created, 0);
      const all = await contactsOf(ctx);
      assert.equal(all.length, 1);
      assert.equal(all[0].id, budi.id);
      assert.equal(all[0].phone_number, "+6281300000021");
      assert.equal(all[0].username, "@budi.coffee", "a later payload without username keeps it");
      // The BSUID changes, then the new BSUID writes: still the same contact.
      await postOk(h, fixture("system-user-changed-user-id", ctx.pnid));
      await postOk(h, inbound(ctx.pnid, { user_id: "ID.99900000000000000002", name: "Budi" }));
      const again = await contactsOf(ctx);
      assert.equal(again.length, 1);
      assert.equal(again[0].id, budi.id);
      assert.equal(again[0].business_scoped_user_id, "ID.99900000000000000002");
      assert.equal(again[0].phone_number, "+6281300000021");
    });

    test("a BSUID-only webhook contact and an API contact of the same phone become one", async () => {
      const ctx = await newAccount();
      const created = await h.inject({
        method: "POST",
        url: `/v1/${ctx.pnid}/contacts`,
        headers: ctx.auth,
        payload: { phone_number: "+6281300000031", name: "Known Customer", metadata: { crm: "7" } },
      });
      assert.equal(created.statusCode, 201, created.body);
      await postOk(h, inbound(ctx.pnid, { user_id: "ID.MERGE1", name: "Merge Me", username: "@merge" }));
      assert.equal((await contactsOf(ctx)).length, 2);
      const body = await postOk(h, inbound(ctx.pnid, { wa_id: "6281300000031", user_id: "ID.MERGE1" }));
      assert.equal(body.merged, 1);
      const all = await contactsOf(ctx);
      assert.equal(all.length, 1, JSON.stringify(all));
      assert.equal(all[0].id, created.json().data.id);
      assert.equal(all[0].business_scoped_user_id, "ID.MERGE1");
      assert.equal(all[0].username, "@merge");
      assert.equal(all[0].profile_name, "Merge Me");
      assert.equal(all[0].source, "api");
      assert.deepEqual(all[0].metadata, { crm: "7" });
    });

    test("two contacts with data of their own are never merged", async () => {
      const ctx = await newAccount();
      const a = await h.inject({
        method: "POST",
        url: `/v1/${ctx.pnid}/contacts`,
        headers: ctx.auth,
        payload: { phone_number: "+6281300000041", name: "By Phone" },
      });
      const b = await h.inject({
        method: "POST",
        url: `/v1/${ctx.pnid}/contacts`,
        headers: ctx.auth,
        payload: { business_scoped_user_id: "ID.SPLIT1", name: "By BSUID" },
      });
      assert.equal(a.statusCode, 201, a.body);
      assert.equal(b.statusCode, 201, b.body);
      const body = await postOk(
        h,
        inbound(ctx.pnid, { wa_id: "6281300000041", user_id: "ID.SPLIT1", name: "P" }),
      );
      assert.equal(body.merged, 0);
      const all = await contactsOf(ctx);
      assert.equal(all.length, 2);
      const bsuidHolder = all.find((c) => c.id === b.json().data.id);
      assert.equal(bsuidHolder.profile_name, "P", "the BSUID decides which contact is updated");
      assert.equal(bsuidHolder.phone_number, null, "the phone stays with the contact that has it");
    });

    test("a profile name is kept as far as the name rules allow, never failing the delivery", async () => {
      const ctx = await newAccount();
      await postOk(
        h,
        inbound(ctx.pnid, { wa_id: "6281300000081", name: `Line\none\ttab${"y".repeat(300)}` }),
      );
      await postOk(h, inbound(ctx.pnid, { wa_id: "6281300000082", name: "   " }));
      const [long] = await contactsOf(ctx, "&phone=%2B6281300000081");
      assert.equal(long.profile_name.length, 256);
      assert.ok(long.profile_name.startsWith("Line one tab"), long.profile_name);
      const [blank] = await contactsOf(ctx, "&phone=%2B6281300000082");
      assert.equal(blank.profile_name, null);
      assert.equal(blank.name, null);
    });

    test("contacts without a phone are listed and searchable by name and username", async () => {
      const ctx = await newAccount();
      await postOk(h, fixture("inbound-bsuid-only", ctx.pnid));
      for (const term of ["budi", "BUDI", "@budi.coffee", "coffee"]) {
        const found = await contactsOf(ctx, `&search=${encodeURIComponent(term)}`);
        assert.equal(found.length, 1, term);
        assert.equal(found[0].phone_number, null);
      }
      const res = await h.inject({
        method: "GET",
        url: `/v1/contacts/${(await contactsOf(ctx))[0].id}`,
        headers: ctx.auth,
      });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().data.business_scoped_user_id, "ID.88012345678901234567");
    });

    test("unknown phone_number_id and status-only payloads are acknowledged and store nothing", async () => {
      const contacts = await rowCount(h, "contacts");
      const receipts = await rowCount(h, "inbound_receipts");
      const unknown = await postOk(h, fixture("inbound-text", "555000111222"));
      assert.deepEqual(unknown.unknown_phone_number_ids, ["555000111222"]);
      const ctx = await newAccount();
      const status = await postOk(h, fixture("status-delivered", ctx.pnid));
      assert.equal(status.created, 0);
      // Fields and objects this service does not act on.
      const other = JSON.stringify({
        object: "page",
        entry: [{ id: "1", changes: [{ field: "feed", value: {} }] }],
      });
      assert.equal((await post(h, other)).statusCode, 200);
      const template = JSON.stringify({
        object: "whatsapp_business_account",
        entry: [
          { id: "1", changes: [{ field: "message_template_status_update", value: { event: "APPROVED" } }] },
        ],
      });
      assert.equal((await post(h, template)).statusCode, 200);
      assert.equal(await rowCount(h, "contacts"), contacts);
      assert.equal(await rowCount(h, "inbound_receipts"), receipts);
    });

    test("malformed bodies are 400 with nothing stored, never 500", async () => {
      const ctx = await newAccount();
      const good = JSON.parse(inbound(ctx.pnid, { wa_id: "6281300000051", name: "Good" }));
      const change = (value: unknown) =>
        JSON.stringify({
          object: "whatsapp_business_account",
          entry: [{ id: "1", changes: [good.entry[0].changes[0], { field: "messages", value }] }],
        });
      const meta = { phone_number_id: ctx.pnid };
      const cases: Array<[string, string, string]> = [
        ["empty body", "", "invalid_json"],
        ["not json", "{oops", "invalid_json"],
        ["json array", "[]", "invalid_field_value"],
        ["json string", '"hello"', "invalid_field_value"],
        ["no object", JSON.stringify({ entry: [] }), "missing_required_field"],
        [
          "entry not array",
          JSON.stringify({ object: "whatsapp_business_account", entry: {} }),
          "invalid_field_value",
        ],
        ["no entry", JSON.stringify({ object: "whatsapp_business_account" }), "invalid_field_value"],
        [
          "changes missing",
          JSON.stringify({ object: "whatsapp_business_account", entry: [{ id: "1" }] }),
          "invalid_field_value",
        ],
        ["value not object", change("x"), "invalid_field_value"],
        ["no metadata", change({ contacts: [] }), "invalid_field_value"],
        ["no phone_number_id", change({ metadata: {} }), "missing_required_field"],
        ["contacts not array", change({ metadata: meta, contacts: {} }), "invalid_field_value"],
        [
          "contact without ids",
          change({ metadata: meta, contacts: [{ profile: { name: "x" } }] }),
          "missing_required_field",
        ],
        [
          "wa_id a number",
          change({ metadata: meta, contacts: [{ wa_id: 6281300000052 }] }),
          "invalid_field_value",
        ],
        ["impossible wa_id", change({ metadata: meta, contacts: [{ wa_id: "12" }] }), "invalid_phone_number"],
        [
          "user_id with spaces",
          change({ metadata: meta, contacts: [{ user_id: "ID 1" }] }),
          "invalid_field_value",
        ],
        [
          "profile name not a string",
          change({ metadata: meta, contacts: [{ wa_id: "6281300000053", profile: { name: 42 } }] }),
          "invalid_field_value",
        ],
        [
          "system without new number",
          change({
            metadata: meta,
            messages: [{ from: "6281300000051", type: "system", system: { type: "user_changed_number" } }],
          }),
          "missing_required_field",
        ],
        [
          "preference without timestamp",
          JSON.stringify({
            object: "whatsapp_business_account",
            entry: [
              {
                id: "1",
                changes: [
                  {
                    field: "user_preferences",
                    value: {
                      metadata: meta,
                      user_preferences: [
                        { wa_id: "6281300000051", category: "marketing_messages", value: "stop" },
                      ],
                    },
                  },
                ],
              },
            ],
          }),
          "invalid_field_value",
        ],
      ];
      for (const [what, raw, code] of cases) {
        const res = await post(h, raw);
        assert.equal(res.statusCode, 400, `${what}: ${res.body}`);
        assert.equal(res.json().error.code, code, `${what}: ${res.body}`);
      }
      assert.equal((await contactsOf(ctx)).length, 0, "the valid first change was rolled back with the rest");
      assert.equal((await postOk(h, JSON.stringify(good))).created, 1);
    });

    test("arbitrary near-valid deliveries are answered 200 or 400, never 500", async () => {
      const ctx = await newAccount();
      const id = fc.oneof(
        fc.constantFrom("6281300000071", "6281300000072", "ID.F1", "ID.F2", "", " ", "12", "x".repeat(300)),
        fc.string({ maxLength: 20 }),
        fc.integer(),
        fc.constant(null),
      );
      const person = fc.record(
        {
          wa_id: id,
          user_id: id,
          parent_user_id: id,
          profile: fc.record({ name: id, username: id }, { requiredKeys: [] }),
        },
        { requiredKeys: [] },
      );
      const system = fc.record(
        {
          type: fc.constantFrom("system"),
          from: id,
          from_user_id: id,
          system: fc.record(
            {
              type: fc.constantFrom("user_changed_number", "user_changed_user_id", "other"),
              wa_id: id,
              user_id: id,
              previous_user_id: id,
              parent_user_id: id,
            },
            { requiredKeys: ["type"] },
          ),
        },
        { requiredKeys: ["type"] },
      );
      const pref = fc.record({
        wa_id: id,
        user_id: id,
        category: fc.constantFrom("marketing_messages", "other"),
        value: fc.constantFrom("stop", "resume", "maybe"),
        timestamp: fc.oneof(fc.integer({ min: -5, max: 2_000_000_000 }), fc.constantFrom("1763790000", "x")),
      });
      const change = fc.record({
        field: fc.constantFrom("messages", "user_preferences"),
        value: fc.record({
          metadata: fc.constant({ phone_number_id: ctx.pnid }),
          contacts: fc.array(person, { maxLength: 3 }),
          messages: fc.array(system, { maxLength: 2 }),
          user_preferences: fc.array(pref, { maxLength: 2 }),
        }),
      });
      const delivery = fc.record({
        object: fc.constant("whatsapp_business_account"),
        entry: fc.array(fc.record({ id: fc.constant("1"), changes: fc.array(change, { maxLength: 3 }) }), {
          minLength: 1,
          maxLength: 2,
        }),
      });
      const seen = new Set<number>();
      await fc.assert(
        fc.asyncProperty(delivery, async (body) => {
          const res = await post(h, JSON.stringify(body));
          seen.add(res.statusCode);
          assert.ok(res.statusCode === 200 || res.statusCode === 400, `${res.statusCode} ${res.body}`);
        }),
        { numRuns: 150 },
      );
      assert.ok(seen.has(200) && seen.has(400), `both outcomes were exercised: ${[...seen]}`);
    });

    test("an oversized body is 413; the routes are in the generated reference", async () => {
      const big = JSON.stringify({
        object: "whatsapp_business_account",
        entry: [],
        pad: "x".repeat(1024 * 1024),
      });
      const res = await post(h, big);
      assert.equal(res.statusCode, 413, res.body.slice(0, 200));
      assert.equal(res.json().error.code, "payload_too_large");
      const doc = await h.inject({ method: "GET", url: "/docs/json" });
      assert.equal(doc.statusCode, 200);
      const paths = doc.json().paths as Record<string, Record<string, unknown>>;
      assert.ok(
        paths["/webhooks/whatsapp"]?.get && paths["/webhooks/whatsapp"]?.post,
        Object.keys(paths).join(),
      );
    });

    test("concurrent deliveries about one new person create one contact", async () => {
      const ctx = await newAccount();
      const deliveries = Array.from({ length: 20 }, (_, i) =>
        inbound(
          ctx.pnid,
          { wa_id: "6281300000061", user_id: "ID.RACE1", name: `Racer ${i % 2}` },
          `wamid.race${i}`,
        ),
      );
      const results = await Promise.all(deliveries.map((raw) => post(h, raw)));
      for (const res of results) assert.equal(res.statusCode, 200, res.body);
      assert.equal(
        results.reduce((n, res) => n + res.json().created, 0),
        1,
      );
      assert.equal((await contactsOf(ctx)).length, 1);
    });

    test(`a burst of ${BURST.toLocaleString("en-US")} signed deliveries is absorbed without errors`, async () => {
      const ctx = await newAccount();
      const persons = BURST / 4;
      const deliveries = Array.from({ length: BURST }, (_, i) => {
        const n = i % persons;
        return inbound(
          ctx.pnid,
          { wa_id: `62813100${String(n).padStart(5, "0")}`, user_id: `ID.BURST${n}`, name: `Burst ${n}` },
          `wamid.burst${i}`,
        );
      });
      const statuses = new Map<number, number>();
      const concurrency = 50;
      for (let i = 0; i < deliveries.length; i += concurrency) {
        const results = await Promise.all(deliveries.slice(i, i + concurrency).map((raw) => post(h, raw)));
        for (const res of results) {
          statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
          if (res.statusCode !== 200) assert.fail(`delivery failed: ${res.statusCode} ${res.body}`);
        }
      }
      assert.deepEqual([...statuses], [[200, BURST]]);
      const count = await h.store.db
        .selectFrom("contacts")
        .select((eb) => eb.fn.countAll<number | string>().as("n"))
        .where("account_id", "=", ctx.accountId)
        .executeTakeFirstOrThrow();
      assert.equal(Number(count.n), persons, "one contact per person");
    });
  });
}

describe("Meta webhook configuration", () => {
  test("without META_APP_SECRET and META_VERIFY_TOKEN the routes answer 404", async () => {
    const envs: Array<Record<string, string>> = [
      {},
      { META_APP_SECRET: SECRET },
      { META_VERIFY_TOKEN: VERIFY_TOKEN },
    ];
    for (const env of envs) {
      const h = await createHarness("sqlite", env);
      try {
        const get = await h.inject({
          method: "GET",
          url: `/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=${VERIFY_TOKEN}&hub.challenge=1`,
        });
        assert.equal(get.statusCode, 404, get.body);
        const raw = fixture("inbound-text");
        const res = await post(h, raw);
        assert.equal(res.statusCode, 404, res.body);
      } finally {
        await h.close();
      }
    }
  });

  test("an unknown phone_number_id is logged", async () => {
    const testStore = await createTestStore("sqlite");
    const lines: string[] = [];
    const logStream = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const config = loadConfig({ ...testStore.env, ...WEBHOOK_ENV, LOG_LEVEL: "info" });
    const app = await buildApp(config, { store: testStore.store, logStream });
    try {
      const org = await createOrganization(testStore.store.db, { name: "Log Co" });
      await createAccount(testStore.store.db, org.id, {
        phone_number_id: FIXTURE_PNID,
        phone_number: "+628111222333",
      });
      const raw = fixture("inbound-two-contacts");
      const res = await app.inject({
        method: "POST",
        url: "/webhooks/whatsapp",
        headers: { "content-type": "application/json", "x-hub-signature-256": signMetaPayload(SECRET, raw) },
        payload: raw,
      });
      assert.equal(res.statusCode, 200, res.body);
      const logged = lines
        .map((line) => JSON.parse(line))
        .filter((l) => l.phone_number_id === "999000111222333");
      assert.equal(logged.length, 1, lines.join(""));
      assert.equal(logged[0].level, 40);
      assert.ok(!lines.join("").includes(SECRET), "the secret never reaches the log");
      assert.ok(!lines.join("").includes(signMetaPayload(SECRET, raw)), "nor the signature");
    } finally {
      await app.close();
      await testStore.drop();
    }
  });
});
