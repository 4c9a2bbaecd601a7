/**
 * The import's parser thread (see import-parse.ts): asks the main thread for
 * the file's pieces, reads them as rows, applies the field rules and posts
 * batches of rows, keeping at most AHEAD batches that were not taken yet.
 */
import { parentPort, workerData } from "node:worker_threads";
import { isApiError } from "../errors.ts";
import { AHEAD, type FromWorker, type ParseJob, parseHere, type ToWorker } from "./import-parse.ts";

const port = parentPort;
if (!port) throw new Error("import-parse-worker runs as a worker thread");
const job = workerData as ParseJob;
const post = (message: FromWorker) => port.postMessage(message);

let pieceWaiter: ((piece: Uint8Array | undefined) => void) | undefined;
let outstanding = 0;
let ackWaiter: (() => void) | undefined;

port.on("message", (message: ToWorker) => {
  if (message.type === "ack") {
    outstanding--;
    const w = ackWaiter;
    ackWaiter = undefined;
    w?.();
    return;
  }
  const w = pieceWaiter;
  pieceWaiter = undefined;
  w?.(message.type === "chunk" ? message.data : undefined);
});

async function* pieces(): AsyncGenerator<Uint8Array> {
  for (;;) {
    const piece = await new Promise<Uint8Array | undefined>((resolve) => {
      pieceWaiter = resolve;
      post({ type: "pull" });
    });
    if (piece === undefined) return;
    yield Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
  }
}

try {
  for await (const rows of parseHere(pieces(), job)) {
    while (outstanding >= AHEAD) {
      await new Promise<void>((resolve) => {
        ackWaiter = resolve;
      });
    }
    outstanding++;
    post({ type: "batch", rows });
  }
  post({ type: "end" });
} catch (error) {
  post({
    type: "error",
    error: isApiError(error)
      ? { code: error.code, message: error.message, param: error.param }
      : { message: error instanceof Error ? error.message : String(error) },
  });
}
