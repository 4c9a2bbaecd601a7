import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseHere, parseInWorker } from "../../src/jobs/import-parse.ts";
import type { ImportFormat } from "../../src/jobs/import-records.ts";

/** A file in pieces of `size` bytes (rows and quoted fields cut across pieces). */
async function* piecesOf(text: string, size: number): AsyncGenerator<Buffer> {
  const bytes = Buffer.from(text);
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

const CSV = [
  "phone_number,name,email,labels,tier",
  ...Array.from({ length: 1200 }, (_, i) => {
    if (i % 97 === 5) return `12,"Bad, phone ${i}",b${i}@example.com,,`;
    if (i % 89 === 7)
      return `+62812${String(5000000 + i)},"Quoted ""name""\nover two lines",x${i}@example.com,vip|VIP,gold`;
    if (i % 83 === 3) return `+62812${String(5000000 + i)},Too,many,fields,here,and,more`;
    if (i % 79 === 1) return `,No identity ${i},n${i}@example.com,,`;
    return `+62812${String(5000000 + i)},Person ${i},p${i}@example.com,,silver`;
  }),
].join("\r\n");

const NDJSON = Array.from({ length: 700 }, (_, i) =>
  i % 50 === 3
    ? "{not json"
    : JSON.stringify({
        phone_number: i % 61 === 9 ? "nope" : `+62813${String(6000000 + i)}`,
        name: `N ${i}`,
      }),
).join("\n");

async function collect(batches: AsyncIterable<unknown[]>): Promise<unknown[][]> {
  const out: unknown[][] = [];
  for await (const batch of batches) out.push(batch);
  return out;
}

describe("import parsing in a worker thread", () => {
  for (const [format, text] of [
    ["csv", CSV],
    ["ndjson", NDJSON],
  ] as Array<[ImportFormat, string]>) {
    test(`${format}: the worker gives exactly the batches parsed in this thread (errors, skip, batch edges)`, async () => {
      for (const [batchSize, skip] of [
        [128, 0],
        [100, 250],
      ] as const) {
        const here = await collect(parseHere(piecesOf(text, 4096), { format, batchSize, skip }));
        const worker = await collect(parseInWorker(piecesOf(text, 4096), { format, batchSize, skip }));
        assert.ok(here.length > 1);
        assert.deepEqual(worker, here, `batch ${batchSize}, skip ${skip}`);
        const rows = here.flat() as Array<{ read: { normalized?: boolean; problem?: unknown } }>;
        // Valid rows come checked; rows that fail a field rule are left for the batch to report.
        assert.ok(rows.some((r) => r.read.normalized === true));
        assert.ok(rows.some((r) => "problem" in r.read || r.read.normalized !== true));
      }
    });
  }

  test("a consumer that stops early ends the worker and the reading of the file", async () => {
    let pulled = 0;
    async function* counted(): AsyncGenerator<Buffer> {
      for await (const piece of piecesOf(CSV, 256)) {
        pulled++;
        yield piece;
      }
    }
    for await (const batch of parseInWorker(counted(), { format: "csv", batchSize: 50, skip: 0 })) {
      assert.equal(batch.length, 50);
      break;
    }
    const total = Math.ceil(Buffer.byteLength(CSV) / 256);
    assert.ok(pulled < total, `read ${pulled} of ${total} pieces`);
  });

  test("a header the reader refuses is the reader's error, not a crash", async () => {
    await assert.rejects(
      collect(
        parseInWorker(piecesOf("name,email\nA,a@example.com\n", 64), {
          format: "csv",
          batchSize: 10,
          skip: 0,
        }),
      ),
      (error: Error & { code?: string }) => error.code === "missing_required_field",
    );
  });
});
