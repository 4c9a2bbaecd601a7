import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { type Bound, type Keyset, walkKeyset } from "../../src/domain/pagination.ts";
import { ApiError } from "../../src/errors.ts";
import {
  boundOf,
  decodeKeysetCursor,
  encodeKeysetCursor,
  offsetWindow,
} from "../../src/http/platform/pagination.ts";

/** `created_at desc, id desc` */
function compare(a: Keyset, b: Keyset): number {
  return b.created_at - a.created_at || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

/** An in-memory store answering walkKeyset's two questions the way the repositories do. */
function memory(rows: Keyset[]) {
  const sorted = [...rows].sort(compare);
  const beyond = (bound: Bound) =>
    sorted.filter(
      (r) => (!bound.after || compare(r, bound.after) > 0) && (!bound.before || compare(r, bound.before) < 0),
    );
  return {
    sorted,
    fetch: async (bound: Bound, limit: number) => {
      const hits = beyond(bound);
      return bound.before ? hits.slice(Math.max(0, hits.length - limit)) : hits.slice(0, limit);
    },
    exists: async (bound: Bound) => beyond(bound).length > 0,
  };
}

const rowsArb = fc.uniqueArray(
  fc.record({ created_at: fc.integer({ min: 0, max: 5 }), id: fc.stringMatching(/^[A-Z0-9]{1,4}$/) }),
  { selector: (r) => r.id, maxLength: 40 },
);

describe("two-way keyset pages (walkKeyset)", () => {
  test("walking forward with after visits every row once in order; walking back with before returns the same pages", async () => {
    await fc.assert(
      fc.asyncProperty(rowsArb, fc.integer({ min: 1, max: 7 }), async (rows, limit) => {
        const m = memory(rows);
        const forward: Keyset[][] = [];
        let page = await walkKeyset({}, limit, m.fetch, m.exists);
        assert.equal(page.before, null);
        forward.push(page.rows);
        while (page.after) {
          page = await walkKeyset({ after: page.after }, limit, m.fetch, m.exists);
          assert.notEqual(page.before, null, "a page reached with after has a previous page");
          forward.push(page.rows);
        }
        assert.deepEqual(forward.flat(), m.sorted);
        const backward: Keyset[][] = [page.rows];
        while (page.before) {
          page = await walkKeyset({ before: page.before }, limit, m.fetch, m.exists);
          backward.unshift(page.rows);
        }
        assert.deepEqual(backward, forward);
      }),
      { numRuns: 150 },
    );
  });

  test("a cursor past either end gives an empty page that points back into the data", async () => {
    const m = memory([
      { created_at: 2, id: "B" },
      { created_at: 1, id: "A" },
    ]);
    const pastEnd = await walkKeyset({ after: { created_at: 0, id: "Z" } }, 5, m.fetch, m.exists);
    assert.deepEqual(pastEnd, { rows: [], before: { created_at: 0, id: "Z" }, after: null });
    const back = await walkKeyset({ before: pastEnd.before! }, 5, m.fetch, m.exists);
    assert.deepEqual(
      back.rows.map((r) => r.id),
      ["B", "A"],
    );
    const pastStart = await walkKeyset({ before: { created_at: 9, id: "A" } }, 5, m.fetch, m.exists);
    assert.deepEqual(pastStart, { rows: [], before: null, after: { created_at: 9, id: "A" } });
  });
});

describe("Kapso-style cursors", () => {
  test("are standard Base64 of the JSON keyset and round-trip", () => {
    const position = {
      created_at: Date.parse("2026-05-23T10:00:00.123Z"),
      id: "ctc_01J0000000000000000000000A",
    };
    const cursor = encodeKeysetCursor(position);
    assert.deepEqual(JSON.parse(Buffer.from(cursor, "base64").toString("utf8")), {
      created_at: "2026-05-23T10:00:00.123Z",
      id: "ctc_01J0000000000000000000000A",
    });
    assert.deepEqual(decodeKeysetCursor(cursor, "after"), position);
  });

  test("never contain + or / (JSON is ASCII without > ? ~), so they travel unencoded in a query", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4102444800000 }),
        fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
        (t, id) => {
          const cursor = encodeKeysetCursor({ created_at: t, id });
          assert.match(cursor, /^[A-Za-z0-9]+=*$/);
          assert.deepEqual(decodeKeysetCursor(cursor, "after"), { created_at: t, id });
        },
      ),
    );
  });

  test("anything else is 400 invalid_cursor naming the parameter", () => {
    for (const raw of [
      "",
      "%%%",
      Buffer.from("not json").toString("base64"),
      Buffer.from("[]").toString("base64"),
      Buffer.from('{"created_at":"2026-05-23","id":"x"}').toString("base64"),
      Buffer.from('{"created_at":"2026-05-23T10:00:00Z","id":"x y"}').toString("base64"),
      Buffer.from('{"created_at":"2026-05-23T10:00:00Z"}').toString("base64"),
      "A".repeat(600),
    ]) {
      assert.throws(
        () => decodeKeysetCursor(raw, "before"),
        (e: unknown) => e instanceof ApiError && e.code === "invalid_cursor" && e.param === "before",
        raw,
      );
    }
    assert.throws(
      () => boundOf("a", "b"),
      (e: unknown) => e instanceof ApiError && e.code === "invalid_field_value",
    );
  });
});

describe("offset windows", () => {
  test("pages up to 50 and windows up to 5,000 rows; beyond is the legacy error with its figures", () => {
    assert.deepEqual(offsetWindow(undefined, undefined, 20, "x"), { page: 1, perPage: 20, offset: 0 });
    assert.deepEqual(offsetWindow(50, 100, 20, "x"), { page: 50, perPage: 100, offset: 4900 });
    assert.throws(
      () => offsetWindow(51, 10, 20, "example"),
      (e: unknown) =>
        e instanceof ApiError &&
        e.code === "legacy_offset_pagination_limit_exceeded" &&
        e.status === 400 &&
        JSON.stringify(e.extra) ===
          JSON.stringify({
            requested_page: 51,
            requested_per_page: 10,
            requested_window: 510,
            max_page: 50,
            max_window: 5000,
            cursor_example: "example",
          }),
    );
    for (const [page, perPage, code] of [
      [0, 10, "invalid_field_value"],
      [Number.NaN, 10, "invalid_field_value"],
      [1, 0, "invalid_limit"],
      [1, 101, "invalid_limit"],
    ] as const) {
      assert.throws(
        () => offsetWindow(page, perPage, 20, "x"),
        (e: unknown) => e instanceof ApiError && e.code === code,
      );
    }
  });
});
