/**
 * The house rules of docs/architecture.md that a reader can check with grep,
 * checked on every run so that they stay true: the domain speaks no wire
 * language and knows no framework, and no lower floor imports a higher one.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { test } from "node:test";

const ROOT = join(import.meta.dirname, "..");
const SRC = join(ROOT, "src");

function sourcesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourcesUnder(path) : name.endsWith(".ts") ? [path] : [];
  });
}

/** The modules a file imports (static and dynamic), as written. */
function importsOf(path: string): string[] {
  const text = readFileSync(path, "utf8");
  return [...text.matchAll(/(?:from|import)\s*\(?\s*"([^"]+)"/g)].map((m) => m[1]!);
}

test("the domain names no wire field: `wa_id` (Kapso's and Meta's word) appears nowhere in src/domain", () => {
  const found = sourcesUnder(join(SRC, "domain")).filter((path) =>
    readFileSync(path, "utf8").includes("wa_id"),
  );
  assert.deepEqual(
    found.map((p) => relative(ROOT, p)),
    [],
  );
});

test("the domain knows no HTTP framework: nothing in src/domain imports fastify or @fastify/*", () => {
  const found = sourcesUnder(join(SRC, "domain")).flatMap((path) =>
    importsOf(path)
      .filter((m) => m === "fastify" || m.startsWith("@fastify/") || m.startsWith("fastify-"))
      .map((m) => `${relative(ROOT, path)} → ${m}`),
  );
  assert.deepEqual(found, []);
});

test("nothing runs back up: src/domain, src/store and src/jobs import no surface (src/http)", () => {
  const found = ["domain", "store", "jobs"].flatMap((floor) =>
    sourcesUnder(join(SRC, floor)).flatMap((path) =>
      importsOf(path)
        .filter((m) => m.startsWith(".") && join(path, "..", m).startsWith(join(SRC, "http")))
        .map((m) => `${relative(ROOT, path)} → ${m}`),
    ),
  );
  assert.deepEqual(found, []);
});

test("the domain does not reach into jobs, and the store into neither", () => {
  const above = (path: string, floors: string[]) =>
    importsOf(path)
      .filter((m) => m.startsWith(".") && floors.some((f) => join(path, "..", m).startsWith(join(SRC, f))))
      .map((m) => `${relative(ROOT, path)} → ${m}`);
  const found = [
    ...sourcesUnder(join(SRC, "domain")).flatMap((p) => above(p, ["jobs", "cli"])),
    ...sourcesUnder(join(SRC, "store")).flatMap((p) => above(p, ["domain", "jobs", "cli"])),
  ];
  assert.deepEqual(found, []);
});
