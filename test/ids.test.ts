import assert from "node:assert/strict";
import { test } from "node:test";
import { isId, newId } from "../src/ids.ts";

test("ids: valid, unique and increasing across random-pool refills, random part spread over the alphabet", () => {
  // Each new millisecond draws 16 random bytes; 400 milliseconds draw more than the 4 KiB pool holds.
  const ids: string[] = [];
  const times = new Set<string>();
  while (times.size < 400) {
    const id = newId("ctc");
    ids.push(id);
    times.add(id.slice(4, 14));
  }
  for (const id of ids) assert.ok(isId("ctc", id), id);
  assert.equal(new Set(ids).size, ids.length);
  assert.deepEqual([...ids].sort(), ids, "monotonic: sorted order is creation order");
  const letters = new Set(ids.flatMap((id) => [...id.slice(14)]));
  assert.equal(letters.size, 32, "every letter of the alphabet turns up in the random parts");
});
