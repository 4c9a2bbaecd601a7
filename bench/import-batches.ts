/**
 * The import job's batch size (rows per transaction) on a large SQLite store:
 *
 *   npm run bench -- --only get --duration 1 --keep   # seeds 1M contacts, prints "Kept the store: DIR"
 *   node --import tsx bench/import-batches.ts DIR/phonebook.db [rows=200000] [batches=500,5000]
 *
 * For each batch size: copies the store (so every variant starts from the
 * same 1M contacts), uploads a CSV of `rows` new random phones into the big
 * tenant, runs the import job in-process and prints its rows/s. At this size
 * the store's own work (random inserts into the phone indexes, the trigram
 * index, WAL commits and checkpoints) dominates; larger transactions amortise
 * the pages each commit rewrites. See docs/benchmarks.md.
 */
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { sql } from "kysely";
import { createAccount } from "../src/domain/accounts.ts";
import { createImport } from "../src/domain/imports.ts";
import { newId } from "../src/ids.ts";
import { receiveUpload } from "../src/jobs/import-records.ts";
import { ImportRunner } from "../src/jobs/import-runner.ts";
import { findImport } from "../src/store/repositories/imports.ts";
import { createSqliteStore } from "../src/store/store.ts";

const [source, rowsArg = "200000", batchesArg = "500,5000"] = process.argv.slice(2);
if (!source) {
  console.error("usage: node --import tsx bench/import-batches.ts <phonebook.db> [rows] [batch sizes]");
  process.exit(2);
}
const rows = Number(rowsArg);

async function* csv(): AsyncGenerator<Buffer> {
  yield Buffer.from("phone_number,name,email,tier\n");
  for (let i = 0; i < rows; i += 1000) {
    let text = "";
    for (let j = i; j < Math.min(rows, i + 1000); j++) {
      const phone = `+6285${String((j * 2654435761) % 999_999_999).padStart(9, "0")}`;
      text += `${phone},Imported ${j},imported.${j}@example.com,gold\n`;
    }
    yield Buffer.from(text);
  }
}

for (const batchSize of batchesArg.split(",").map(Number)) {
  const dir = mkdtempSync(join(tmpdir(), "pb-import-batches-"));
  copyFileSync(source, join(dir, "phonebook.db"));
  const store = createSqliteStore(join(dir, "phonebook.db"));
  try {
    const { rows: top } = await sql<{ organization_id: string; n: number }>`
      SELECT organization_id, count(*) AS n FROM contacts GROUP BY organization_id ORDER BY n DESC LIMIT 1`.execute(
      store.db,
    );
    const org = top[0]!.organization_id;
    const account = await createAccount(store.db, org, {
      phone_number_id: String(100_000_000 + (Date.now() % 1_000_000_000)),
      phone_number: "+628111000999",
    });
    const upload = await receiveUpload(store.db, newId("imp"), csv(), "csv");
    const job = await store.transaction((tx) =>
      createImport(tx, org, account, upload, { format: "csv", mode: "upsert" }),
    );
    const start = performance.now();
    await new ImportRunner(store, { batchSize }).runOnce({ importId: job.id });
    const seconds = (performance.now() - start) / 1000;
    const done = await findImport(store.db, job.id);
    console.log(
      `batch ${batchSize}: ${rows} rows onto ${top[0]!.n} contacts in ${seconds.toFixed(1)} s = ` +
        `${Math.round(rows / seconds)} rows/s (${done?.status}, created ${done?.created}, failed ${done?.failed_rows})`,
    );
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
