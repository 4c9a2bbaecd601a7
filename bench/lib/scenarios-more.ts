/**
 * Scenarios of the capabilities that landed after the harness: idempotent
 * create, batch upsert, file import, export, Meta webhooks and the Kapso
 * platform list. Same shape as SCENARIOS (see scenarios.ts).
 */
import { randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireAccountByPhoneNumberId } from "../../src/domain/accounts.ts";
import { writeContactBatch } from "../../src/domain/contact-batch.ts";
import {
  buildRow,
  contactFilters,
  createContact,
  listContactsAtOffset,
  listContactsPage,
  normalizeInput,
} from "../../src/domain/contacts.ts";
import { ingestObservations } from "../../src/domain/inbound.ts";
import { observationsOf, parseDelivery, signMetaPayload } from "../../src/http/webhooks/meta-delivery.ts";
import { insertContactRows } from "../../src/store/repositories/bulk-insert.ts";
import { messagesDelivery } from "../../test/helpers/meta-delivery.ts";
import type { BenchContext, HttpPlan, Json, Scenario } from "./scenarios.ts";

const BATCH = 1000;
/** Rows per transaction of the import runner (its default batchSize). */
const IMPORT_BATCH = 500;
const KAPSO_LIMIT = 20;

function authOf(ctx: BenchContext): Record<string, string> {
  return { authorization: `Bearer ${ctx.tenant.key}` };
}

function scopeOf(ctx: BenchContext) {
  return { db: ctx.store.db, organizationId: ctx.tenant.orgId };
}

/** Batch bodies: half of each batch are phones an earlier batch created (updates), half new. */
function batchBodies(ctx: BenchContext) {
  let previous: string[] = [];
  let round = 0;
  return () => {
    round += 1;
    const fresh = Array.from({ length: previous.length > 0 ? BATCH / 2 : BATCH }, () => ctx.freshPhone());
    const again = previous.slice(0, BATCH - fresh.length);
    previous = fresh;
    return [...again, ...fresh].map((phone) => ({
      phone_number: phone,
      name: `Batch ${round}`,
      metadata: { round },
    }));
  };
}

export const MORE_SCENARIOS: Scenario[] = [
  {
    kind: "http",
    id: "create_idempotent",
    title: "create with Idempotency-Key",
    async prepare(ctx) {
      const account = ctx.tenant.accounts[0]!;
      const scope = scopeOf(ctx);
      const body = (phone: string) => ({
        phone_number: phone,
        name: "Bench Idempotent",
        metadata: { source: "bench" },
      });
      return {
        next: () => ({
          method: "POST",
          path: `/v1/${account.phoneNumberId}/contacts`,
          headers: { ...authOf(ctx), "idempotency-key": randomUUID() },
          body: JSON.stringify(body(ctx.freshPhone())),
        }),
        expectStatus: 201,
        check: (response: Json, request) =>
          response?.data?.phone_number === JSON.parse(request.body!).phone_number
            ? undefined
            : "wrong contact",
        // The floor is the create itself: the key record is the product's own extra work.
        floor: () =>
          ctx.store.transaction(async (tx) => {
            const row = await requireAccountByPhoneNumberId(tx, scope.organizationId, account.phoneNumberId);
            const input = body(ctx.freshPhone());
            return createContact(
              { ...scope, db: tx },
              row,
              { phone_number: input.phone_number, display_name: input.name, metadata: input.metadata },
              "api",
            );
          }),
      } satisfies HttpPlan;
    },
  },
  {
    kind: "http",
    id: "batch_upsert",
    title: `batch upsert of ${BATCH.toLocaleString("en-US")} (half new, half updates)`,
    async prepare(ctx) {
      const account = ctx.tenant.accounts[0]!;
      const scope = scopeOf(ctx);
      const nextBody = batchBodies(ctx);
      const nextFloor = batchBodies(ctx);
      return {
        next: () => ({
          method: "POST",
          path: `/v1/${account.phoneNumberId}/contacts/batch`,
          headers: authOf(ctx),
          body: JSON.stringify({ mode: "upsert", contacts: nextBody() }),
        }),
        expectStatus: 200,
        check: (response: Json) => {
          const results = response?.data as Array<{ status: string }> | undefined;
          if (!Array.isArray(results) || results.length !== BATCH) return `expected ${BATCH} results`;
          const failed = results.filter((r) => r.status === "error").length;
          return failed === 0 ? undefined : `${failed} items failed`;
        },
        floor: () =>
          ctx.store.transaction(async (tx) => {
            const row = await requireAccountByPhoneNumberId(tx, scope.organizationId, account.phoneNumberId);
            const items = nextFloor().map((c) => ({
              input: { phone_number: c.phone_number, display_name: c.name, metadata: c.metadata },
            }));
            return writeContactBatch({ ...scope, db: tx }, row, items, { mode: "upsert", source: "api" });
          }),
      } satisfies HttpPlan;
    },
  },
  {
    kind: "http",
    id: "webhook",
    title: "Meta webhook delivery (signed, one person)",
    async prepare(ctx) {
      const account = ctx.tenant.accounts[0]!;
      let n = 0;
      const phones = ctx.sample.map((s) => s.phone_number.slice(1));
      const next = () => {
        n += 1;
        return messagesDelivery(
          account.phoneNumberId,
          { wa_id: phones[n % phones.length]!, name: `Webhook ${n}` },
          { timestamp: 1_763_790_000 + n, body: "Halo" },
        );
      };
      return {
        next: () => {
          const body = next();
          return {
            method: "POST",
            path: "/webhooks/whatsapp",
            headers: {
              "content-type": "application/json",
              "x-hub-signature-256": signMetaPayload(ctx.metaAppSecret, body),
            },
            body,
          };
        },
        expectStatus: 200,
        check: () => undefined,
        floor: () =>
          ctx.store.transaction((tx) =>
            ingestObservations(tx, observationsOf(parseDelivery(Buffer.from(next()))), Date.now()),
          ),
      } satisfies HttpPlan;
    },
  },
  {
    kind: "http",
    id: "kapso_list",
    title: "Kapso platform list (first page of 20)",
    async prepare(ctx) {
      return {
        next: () => ({
          method: "GET",
          path: `/platform/v1/whatsapp/contacts?limit=${KAPSO_LIMIT}`,
          headers: { "x-api-key": ctx.tenant.key },
        }),
        expectStatus: 200,
        check: (response: Json) =>
          Array.isArray(response?.data) && response.data.length === KAPSO_LIMIT
            ? undefined
            : "expected a full page",
        floor: () =>
          listContactsPage(scopeOf(ctx), contactFilters(ctx.tenant.orgId, undefined, {}), {}, KAPSO_LIMIT),
      } satisfies HttpPlan;
    },
  },
  {
    kind: "http",
    id: "kapso_offset_50",
    title: "Kapso platform list, offset page 50 (page=50&per_page=20, with total_count)",
    async prepare(ctx) {
      return {
        next: () => ({
          method: "GET",
          path: `/platform/v1/whatsapp/contacts?page=50&per_page=${KAPSO_LIMIT}`,
          headers: { "x-api-key": ctx.tenant.key },
        }),
        expectStatus: 200,
        check: (response: Json) =>
          Array.isArray(response?.data) && response.data.length === KAPSO_LIMIT
            ? undefined
            : "expected a full page",
        floor: () =>
          listContactsAtOffset(
            scopeOf(ctx),
            contactFilters(ctx.tenant.orgId, undefined, {}),
            49 * KAPSO_LIMIT,
            KAPSO_LIMIT,
          ),
      } satisfies HttpPlan;
    },
  },
  {
    kind: "bulk",
    id: "export",
    title: "export of all contacts (NDJSON, streamed)",
    async run(ctx, url) {
      const res = await fetch(`${url}/v1/contacts/export?format=ndjson`, { headers: authOf(ctx) });
      if (res.status !== 200 || !res.body) throw new Error(`export answered ${res.status}`);
      let rows = 0;
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        for (const byte of chunk) if (byte === 10) rows += 1;
      }
      return { rows };
    },
  },
  {
    kind: "bulk",
    id: "import",
    title: "import of a CSV (upsert, new phones)",
    async run(ctx, url) {
      const account = ctx.tenant.accounts[1] ?? ctx.tenant.accounts[0]!;
      const dir = await mkdtemp(join(tmpdir(), "pb-bench-import-"));
      const file = join(dir, "contacts.csv");
      try {
        await new Promise<void>((resolve, reject) => {
          const out = createWriteStream(file);
          out.on("error", reject);
          out.write("phone_number,name,email,tier\n");
          let i = 0;
          const pump = () => {
            while (i < ctx.importRows) {
              const phone = ctx.freshPhone();
              i += 1;
              if (!out.write(`${phone},Imported ${i},imported.${i}@example.com,gold\n`)) {
                out.once("drain", pump);
                return;
              }
            }
            out.end(resolve);
          };
          pump();
        });
        const size = (await stat(file)).size;
        const started = await fetch(
          `${url}/v1/imports?phone_number_id=${account.phoneNumberId}&mode=upsert`,
          {
            method: "POST",
            headers: { ...authOf(ctx), "content-type": "text/csv", "content-length": String(size) },
            body: createReadStream(file) as unknown as BodyInit,
            duplex: "half",
          } as RequestInit,
        );
        const created = (await started.json()) as Json;
        if (started.status !== 202)
          throw new Error(`import answered ${started.status}: ${JSON.stringify(created)}`);
        const id = created.data.id as string;
        for (;;) {
          await new Promise((r) => setTimeout(r, 500));
          const res = await fetch(`${url}/v1/imports/${id}`, { headers: authOf(ctx) });
          const job = ((await res.json()) as Json).data;
          if (job.status === "completed" || job.status === "failed") {
            if (job.status === "failed" || job.failed_rows > 0) {
              throw new Error(`import ${job.status} with ${job.failed_rows} failed rows`);
            }
            return { rows: job.processed_rows as number };
          }
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    // The same number of new rows written by the store alone: prebuilt rows
    // (no CSV, no validation, no identity lookups), multi-row INSERTs in
    // transactions of the import runner's batch size, into another account.
    async floor(ctx, rows) {
      const account = ctx.tenant.accounts[2] ?? ctx.tenant.accounts[0]!;
      const scope = scopeOf(ctx);
      let seconds = 0;
      for (let done = 0; done < rows; done += IMPORT_BATCH) {
        const batch: ReturnType<typeof buildRow>[] = [];
        for (let i = done; i < Math.min(rows, done + IMPORT_BATCH); i++) {
          const input = normalizeInput({
            phone_number: ctx.freshPhone(),
            display_name: `Imported ${i}`,
            email: `imported.${i}@example.com`,
            metadata: { tier: "gold" },
          });
          batch.push(buildRow(scope.organizationId, account.id, input, "import", Date.now()));
        }
        const t0 = performance.now();
        await ctx.store.transaction((tx) => insertContactRows(tx, batch));
        seconds += (performance.now() - t0) / 1000;
        await new Promise((resolve) => setImmediate(resolve));
      }
      return { rows, seconds };
    },
  },
];
