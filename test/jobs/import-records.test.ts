import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { CHUNK_BYTES, storedFile } from "../../src/domain/imports.ts";
import { isApiError } from "../../src/errors.ts";
import { newId } from "../../src/ids.ts";
import { type ImportRecord, readRecords, receiveUpload, recordInput } from "../../src/jobs/import-records.ts";
import { createTestStore, type TestStore } from "../helpers/harness.ts";

/** Splits text into pieces of `size` bytes: multi-byte characters get cut across pieces. */
async function* pieces(text: string, size: number): AsyncGenerator<Buffer> {
  const bytes = Buffer.from(text);
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function records(text: string, format: "csv" | "ndjson", size = 3): Promise<ImportRecord[]> {
  const out: ImportRecord[] = [];
  for await (const r of readRecords(pieces(text, size), format)) out.push(r);
  return out;
}

describe("import file readers", () => {
  test("CSV: BOM, CRLF, quotes, multi-byte characters cut across pieces, blank lines", async () => {
    const text =
      '\ufeffPhone Number,Name,Kota\r\n+628111,"Ñandú, ""El"" 😀",Jakarta\r\n\r\n,,\r\n+628112,Zoë,"Multi\nline"\r\n';
    const out = await records(text, "csv");
    assert.deepEqual(
      out.map((r) => [r.row, r.line, r.fields]),
      [
        [1, 2, { "Phone Number": "+628111", Name: 'Ñandú, "El" 😀', Kota: "Jakarta" }],
        [2, 5, { "Phone Number": "+628112", Name: "Zoë", Kota: "Multi\nline" }],
      ],
    );
    const input = recordInput(out[0]!, "csv");
    assert.ok("input" in input);
    assert.deepEqual(input.input, {
      phone_number: "+628111",
      business_scoped_user_id: undefined,
      email: undefined,
      display_name: 'Ñandú, "El" 😀',
      metadata: { Kota: "Jakarta" },
    });
  });

  test("CSV: header problems are refused; bad rows are row problems in place", async () => {
    await assert.rejects(
      records("name,email\nx,y\n", "csv"),
      (e) => isApiError(e) && e.code === "missing_required_field",
    );
    await assert.rejects(records("phone,PHONE\n1,2\n", "csv"), (e) => isApiError(e) && e.param === "header");
    const out = await records('phone_number,name\n+1,a,extra\n+2\n+3,"open\n+4,d\n', "csv", 5);
    assert.deepEqual(
      out.map((r) => [r.row, r.problem?.code ?? "ok"]),
      [
        [1, "malformed_row"],
        [2, "malformed_row"],
        [3, "malformed_row"],
      ],
    );
    assert.deepEqual(await records("", "csv"), []);
    assert.deepEqual(await records("phone_number\r\n", "csv"), []);
  });

  test("NDJSON: pieces, BOM, CRLF, blank lines, bad lines, huge lines", async () => {
    const huge = JSON.stringify({ phone_number: "+1", note: "x".repeat(300 * 1024) });
    const text = `\ufeff{"phone_number":"+628111","name":"Ñandú 😀"}\r\n\n  \nnot json\n${huge}\n[1]\n{"phone_number":"+628112"}`;
    const out = await records(text, "ndjson", 7);
    assert.deepEqual(
      out.map((r) => [r.row, r.line, r.problem?.code ?? r.fields?.name ?? "ok"]),
      [
        [1, 1, "Ñandú 😀"],
        [2, 4, "invalid_json"],
        [3, 5, "malformed_row"],
        [4, 6, "invalid_json"],
        [5, 7, "ok"],
      ],
    );
  });

  test("NDJSON records: labels as ids, names or label objects; unknown scalars become metadata", () => {
    const r = recordInput(
      {
        row: 1,
        line: 1,
        fields: {
          phone_number: "+628111",
          name: "Shown",
          display_name: null,
          labels: ["lbl_01J0000000000000000000000A", "vip", { id: "lbl_x", name: "gold", color: "amber" }],
          tier: 3,
          id: "ctc_ignored",
          created_at: "2026-01-01T00:00:00.000Z",
        },
      },
      "ndjson",
    );
    assert.ok("input" in r);
    assert.equal(r.input.display_name, null, "display_name wins over name");
    assert.deepEqual(r.labelRefs, ["lbl_01J0000000000000000000000A", "vip", "gold"]);
    assert.deepEqual(r.input.metadata, { tier: 3 });
    const bad = recordInput(
      {
        row: 1,
        line: 1,
        fields: { phone_number: "+1", nested: { a: { b: { c: { d: { e: { f: 1 } } } } } } },
      },
      "ndjson",
    );
    assert.ok("problem" in bad && bad.problem.code === "invalid_metadata");
  });
});

describe("upload storage [sqlite]", () => {
  let ts: TestStore;
  before(async () => {
    ts = await createTestStore("sqlite");
    await ts.store.migrate();
  });
  after(async () => {
    await ts.drop();
  });

  test("a file larger than one piece is stored in pieces and read back byte for byte", async () => {
    const line = `+628111000000,Ñandú 😀 ${"a long name ".repeat(100)}\n`;
    const text = `phone_number,name\n${line.repeat(Math.ceil((CHUNK_BYTES * 2.5) / Buffer.byteLength(line)))}`;
    const id = newId("imp");
    const upload = await receiveUpload(ts.store.db, id, pieces(text, 64 * 1024), "csv");
    assert.equal(upload.chunkCount, 3);
    assert.equal(upload.sizeBytes, Buffer.byteLength(text));
    const back: Buffer[] = [];
    for await (const chunk of storedFile(ts.store.db, { id, chunk_count: upload.chunkCount } as never))
      back.push(chunk);
    assert.ok(Buffer.concat(back).equals(Buffer.from(text)));
    assert.equal(upload.totalRows, text.split("\n").length - 2);
  });

  test("an upload over the limit is refused and leaves nothing behind", async () => {
    const id = newId("imp");
    const text = `phone_number,note\n${`+628111000000,${"n".repeat(2000)}\n`.repeat(1000)}`;
    await assert.rejects(
      receiveUpload(ts.store.db, id, pieces(text, 16 * 1024), "csv", CHUNK_BYTES + 10),
      (e) => isApiError(e) && e.code === "payload_too_large" && e.status === 413,
    );
    const left = await ts.store.db
      .selectFrom("import_chunks")
      .select("seq")
      .where("upload_id", "=", id)
      .execute();
    assert.deepEqual(left, []);
  });
});
