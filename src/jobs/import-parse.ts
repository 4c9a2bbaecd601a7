import { createHash } from "node:crypto";
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { threadId, Worker } from "node:worker_threads";
import { normalizeInput, requireIdentity } from "../domain/contacts.ts";
import type { ImportRowInput } from "../domain/imports.ts";
import { ApiError, type ErrorCode, isApiError } from "../errors.ts";
import type { ImportFormat } from "../store/schema.ts";
import { readRecords, recordInput } from "./import-records.ts";

/**
 * An import file read as batches of rows ready for the store: the CSV or
 * NDJSON reader, the mapping of a record to a contact input, and the field
 * rules of a single create (phone parsing, e-mail, names, metadata limits)
 * — about a fifth of an import's CPU at 1M rows. By default this runs in a
 * worker thread, parsing the next batches while the main thread writes the
 * current one; the main thread only reads the stored file's pieces and hands
 * them over. The worker keeps at most two batches ready ahead of the writer
 * (backpressure: it asks for the next piece only when it has room).
 *
 * A row whose input passed the field rules is marked `normalized` (the batch
 * does not apply them again). A row that did not is handed over as read, and
 * the batch reports its error exactly as before (after its label references
 * are resolved), so what an import reports does not depend on where it parsed.
 */

/** Batches the worker keeps ready ahead of the writer. */
const AHEAD = 2;

/** One record of the file as the batch takes it (see the module comment). */
export function rowInputOf(
  record: Parameters<typeof recordInput>[0],
  format: ImportFormat,
  phoneCountry: string | null = null,
): ImportRowInput {
  const read = recordInput(record, format);
  if ("problem" in read) return { row: record.row, line: record.line, read };
  try {
    const input = normalizeInput(read.input, phoneCountry);
    requireIdentity(input);
    return {
      row: record.row,
      line: record.line,
      read: { input, labelRefs: read.labelRefs, normalized: true },
    };
  } catch (error) {
    if (!isApiError(error)) throw error;
    return { row: record.row, line: record.line, read };
  }
}

/**
 * The rows of the file after the first `skip`, in batches of `batchSize`,
 * parsed in this thread; local-format phones are read in `phoneCountry` (the
 * account's default_country).
 */
export async function* parseHere(
  source: AsyncIterable<Uint8Array>,
  { format, batchSize, skip, phoneCountry = null }: ParseJob,
): AsyncGenerator<ImportRowInput[]> {
  let batch: ImportRowInput[] = [];
  let skipping = skip;
  for await (const record of readRecords(source, format)) {
    if (skipping > 0) {
      skipping--;
      continue;
    }
    batch.push(rowInputOf(record, format, phoneCountry));
    if (batch.length >= batchSize) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

/** What to parse: the file's format, rows per batch, rows to skip (resuming), the country of local phones. */
export interface ParseJob {
  format: ImportFormat;
  batchSize: number;
  skip: number;
  phoneCountry?: string | null;
}

/** Messages from the worker. */
export type FromWorker =
  | { type: "pull" }
  | { type: "batch"; rows: ImportRowInput[] }
  | { type: "end" }
  | { type: "error"; error: { code?: ErrorCode; message: string; param?: string | undefined } };
/** Messages to the worker. */
export type ToWorker = { type: "chunk"; data: Uint8Array } | { type: "end" } | { type: "ack" };

/**
 * The worker thread. Compiled (dist/): its module next to this one. Under tsx
 * (tests, `npm run dev`) a worker does not inherit the TypeScript loader: it
 * runs the worker's sources bundled by esbuild (`devWorkerBundle`), or, if
 * that fails, registers tsx's loader first and then imports the `.ts` module.
 */
function startWorker(job: ParseJob): Worker {
  if (!import.meta.url.endsWith(".ts")) {
    return new Worker(new URL("./import-parse-worker.js", import.meta.url), { workerData: job });
  }
  const bundle = devWorkerBundle();
  if (bundle) return new Worker(bundle, { workerData: job });
  const url = new URL("./import-parse-worker.ts", import.meta.url).href;
  const tsx = import.meta.resolve("tsx/esm/api");
  const boot = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url)}); });`;
  return new Worker(boot, { eval: true, workerData: job });
}

let devBundle: URL | null | undefined;

/**
 * Under tsx only: the worker's own sources bundled into one module by esbuild
 * (which tsx compiles with too), packages left to Node, written once per
 * content to `.tmp/` in the repository (where Node finds the packages). A
 * worker then starts in about a tenth of the time it takes to register tsx's
 * loader in it and resolve its ~450 modules through that loader (~0.6 s of
 * CPU per import in the tests). Null when it cannot be built.
 */
function devWorkerBundle(): URL | null {
  if (devBundle !== undefined) return devBundle;
  try {
    const esbuild = createRequire(import.meta.url)("esbuild") as typeof import("esbuild");
    const built = esbuild.buildSync({
      entryPoints: [fileURLToPath(new URL("./import-parse-worker.ts", import.meta.url))],
      bundle: true,
      packages: "external",
      platform: "node",
      format: "esm",
      target: "node20",
      write: false,
    });
    const text = built.outputFiles[0]!.text;
    const dir = fileURLToPath(new URL("../../.tmp/", import.meta.url));
    const file = join(
      dir,
      `import-parse-worker-${createHash("sha256").update(text).digest("hex").slice(0, 16)}.mjs`,
    );
    if (!existsSync(file)) {
      mkdirSync(dir, { recursive: true });
      const partial = `${file}.${process.pid}.${threadId}`;
      writeFileSync(partial, text);
      renameSync(partial, file); // whole or absent, when several test processes write it at once
    }
    devBundle = pathToFileURL(file);
  } catch {
    devBundle = null;
  }
  return devBundle;
}

/**
 * The same batches as `parseHere`, parsed in a worker thread. The file's
 * pieces are read here (they come from the store) and handed to the worker
 * when it asks; stopping early (the consumer returns or throws) ends the worker.
 */
export async function* parseInWorker(
  source: AsyncIterable<Uint8Array>,
  job: ParseJob,
): AsyncGenerator<ImportRowInput[]> {
  const worker = startWorker(job);
  const pieces = source[Symbol.asyncIterator]();
  const inbox: FromWorker[] = [];
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const send = (message: ToWorker, transfer: ArrayBuffer[] = []) => worker.postMessage(message, transfer);
  let reading = Promise.resolve();
  worker.on("message", (message: FromWorker) => {
    if (message.type === "pull") {
      // Pieces are read one at a time, in order.
      reading = reading.then(async () => {
        try {
          const next = await pieces.next();
          if (next.done) {
            send({ type: "end" });
            return;
          }
          const copy = new Uint8Array(next.value); // its own buffer, transferred without a copy
          send({ type: "chunk", data: copy }, [copy.buffer as ArrayBuffer]);
        } catch (error) {
          failure ??= error instanceof Error ? error : new Error(String(error));
          notify();
        }
      });
      return;
    }
    inbox.push(message);
    notify();
  });
  worker.on("error", (error) => {
    failure ??= error;
    notify();
  });
  worker.on("exit", (code) => {
    failure ??= new Error(`the import's parser thread exited (code ${code})`);
    notify();
  });
  try {
    for (;;) {
      while (inbox.length === 0 && failure === undefined) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
      const message = inbox.shift();
      if (message === undefined) throw failure;
      if (message.type === "end") return;
      if (message.type === "error") {
        const { code, message: text, param } = message.error;
        throw code ? new ApiError(code, text, { param }) : new Error(text);
      }
      if (message.type === "batch") {
        yield message.rows;
        send({ type: "ack" });
      }
    }
  } finally {
    worker.removeAllListeners("exit");
    await worker.terminate();
    await reading.catch(() => undefined);
    await pieces.return?.();
  }
}

export { AHEAD };
