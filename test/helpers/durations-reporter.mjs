// A node --test reporter used by test/run.ts beside `spec`: one JSON line per
// top-level test or suite, with its file and duration, appended to the file
// in PB_TEST_DURATIONS at once (a reporter's own stream can lose its last
// lines to --test-force-exit). The runner adds them up per file, keeps them
// in .tmp/test-durations.json, and starts the longest files first next time
// (docs/testing.md, "What keeps the fast tier fast").
import { appendFileSync } from "node:fs";

export default async function* durations(source) {
  const path = process.env.PB_TEST_DURATIONS;
  for await (const event of source) {
    if (!path || (event.type !== "test:pass" && event.type !== "test:fail")) continue;
    if (event.data.nesting !== 0 || !event.data.file) continue;
    const line = { file: event.data.file, ms: event.data.details?.duration_ms ?? 0 };
    appendFileSync(path, `${JSON.stringify(line)}\n`);
  }
  yield "";
}
