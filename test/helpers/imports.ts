import assert from "node:assert/strict";
import type { Harness, Json } from "./harness.ts";

/** Polls an import until it is completed or failed (the deadline is generous: it only catches a hang). */
export async function waitForImport(h: Harness, id: string, auth: Record<string, string>): Promise<Json> {
  const deadline = Date.now() + 300_000;
  for (;;) {
    const res = await h.inject({ method: "GET", url: `/v1/imports/${id}`, headers: auth });
    assert.equal(res.statusCode, 200, res.body);
    const data = res.json().data;
    if (data.status === "completed" || data.status === "failed") return data;
    if (Date.now() > deadline) throw new Error(`import ${id} did not finish: ${res.body}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
