/**
 * Import throughput and export memory, one process, no HTTP:
 *   node --import tsx bench/imports.ts [sqlite|postgres] [rows]
 * PostgreSQL: PB_BENCH_DATABASE_URL names an empty database (it is written to).
 * Prints rows/s of the upload (store + count) and of the job, then the heap
 * and RSS growth while exporting everything to a sink that reads slowly.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createAccount } from "../src/domain/accounts.ts";
import { contactFilters } from "../src/domain/contacts.ts";
import { createImport } from "../src/domain/imports.ts";
import { createOrganization } from "../src/domain/organizations.ts";
import { newId } from "../src/ids.ts";
import { exportContacts } from "../src/jobs/export.ts";
import { receiveUpload } from "../src/jobs/import-records.ts";
import { ImportRunner } from "../src/jobs/import-runner.ts";
import { findImport } from "../src/store/repositories/imports.ts";
import { createPostgresStore, createSqliteStore } from "../src/store/store.ts";

const kind = process.argv[2] === "postgres" ? "postgres" : "sqlite";
const rows = Number(process.argv[3] ?? 50_000);
const dir = mkdtempSync(join(tmpdir(), "phonebook-bench-"));
const url = process.env.PB_BENCH_DATABASE_URL;
if (kind === "postgres" && !url) throw new Error("set PB_BENCH_DATABASE_URL to an empty database");
const store = kind === "sqlite" ? createSqliteStore(join(dir, "bench.db")) : createPostgresStore(url!);
await store.migrate();
const org = await createOrganization(store.db, { name: "bench" });
const account = await createAccount(store.db, org.id, {
  phone_number_id: String(100_000_000 + (Date.now() % 1_000_000_000)),
  phone_number: "+628111000999",
});

async function* csvFile(): AsyncGenerator<Buffer> {
  yield Buffer.from("phone_number,name,email,labels,tier\n");
  for (let i = 0; i < rows; i += 1000) {
    let text = "";
    for (let j = i; j < Math.min(rows, i + 1000); j++) {
      text += `+62828${String(j).padStart(7, "0")},"Person ${j}, Esq.",p${j}@example.com,${j % 3 === 0 ? "vip|gold" : ""},t${j % 7}\n`;
    }
    yield Buffer.from(text);
  }
}

let t = performance.now();
const upload = await receiveUpload(store.db, newId("imp"), csvFile(), "csv");
const uploadMs = performance.now() - t;
const imp = await store.transaction((tx) =>
  createImport(tx, org.id, account, upload, { format: "csv", mode: "upsert" }),
);
t = performance.now();
await new ImportRunner(store).runOnce({ importId: imp.id });
const jobMs = performance.now() - t;
const done = await findImport(store.db, imp.id);
console.log(
  `${kind}: ${rows} rows, ${(upload.sizeBytes / 1e6).toFixed(1)} MB; upload+count ${Math.round(uploadMs)} ms ` +
    `(${Math.round(rows / (uploadMs / 1000))} rows/s); job ${Math.round(jobMs)} ms ` +
    `(${Math.round(rows / (jobMs / 1000))} rows/s); ${done?.status} created=${done?.created}`,
);

global.gc?.();
const before = process.memoryUsage();
let peakHeap = before.heapUsed;
let bytes = 0;
const slowSink = new Writable({
  highWaterMark: 64 * 1024,
  write(chunk: Buffer, _enc, callback) {
    bytes += chunk.length;
    peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
    setImmediate(callback);
  },
});
t = performance.now();
const scope = { db: store.db, organizationId: org.id };
await pipeline(Readable.from(exportContacts(scope, contactFilters(org.id, account.id, {}), "csv")), slowSink);
const after = process.memoryUsage();
console.log(
  `${kind}: export ${(bytes / 1e6).toFixed(1)} MB in ${Math.round(performance.now() - t)} ms; ` +
    `heap before ${(before.heapUsed / 1e6).toFixed(1)} MB, peak ${(peakHeap / 1e6).toFixed(1)} MB; ` +
    `RSS ${(before.rss / 1e6).toFixed(0)} → ${(after.rss / 1e6).toFixed(0)} MB`,
);
await store.close();
rmSync(dir, { recursive: true, force: true });
