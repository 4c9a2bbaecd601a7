import assert from "node:assert/strict";

interface Res {
  statusCode: number;
  headers: Record<string, unknown>;
  body: string;
  json(): unknown;
}

const REQUEST_ID = /^req_[0-9A-HJKMNP-TV-Z]{26}$/;

/** Asserts the native error envelope with this status and code (and param, when given). */
export function assertError(res: Res, status: number, code: string, param?: string): void {
  let body: { error?: Record<string, unknown> };
  try {
    body = res.json() as { error?: Record<string, unknown> };
  } catch {
    assert.fail(`not JSON (${res.statusCode}): ${res.body}`);
  }
  assert.equal(res.statusCode, status, res.body);
  assert.equal(body.error?.code, code, res.body);
  assert.equal(typeof body.error?.type, "string", res.body);
  assert.equal(typeof body.error?.message, "string", res.body);
  assert.match(String(body.error?.request_id), REQUEST_ID);
  assert.equal(res.headers["x-request-id"], body.error?.request_id);
  if (param !== undefined) assert.equal(body.error?.param, param, res.body);
}

export function assertStatus(res: Res, status: number): void {
  assert.equal(res.statusCode, status, res.body);
}
