import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";

const ROOT = join(import.meta.dirname, "..", "..");
const pages = [
  join(ROOT, "README.md"),
  ...readdirSync(join(ROOT, "docs"))
    .filter((name) => name.endsWith(".md"))
    .map((name) => join(ROOT, "docs", name)),
];

test("every relative link in README.md and docs/ points at a file of the repository", () => {
  const broken: string[] = [];
  for (const page of pages) {
    const text = readFileSync(page, "utf8");
    for (const match of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = match[1]!;
      if (/^[a-z]+:/i.test(target) || target.startsWith("#")) continue;
      const path = resolve(dirname(page), target.split("#")[0]!);
      const inside = !relative(ROOT, path).startsWith("..");
      if (!inside || !existsSync(path)) broken.push(`${relative(ROOT, page)}: ${target}`);
    }
  }
  assert.deepEqual(broken, [], "links outside the repository (a clone has no ../shared) or to missing files");
});

test("docs/api.md documents every error code of the catalogue", async () => {
  const { ERROR_CODES } = await import("../../src/errors.ts");
  const reference = readFileSync(join(ROOT, "docs", "api.md"), "utf8");
  const missing = ERROR_CODES.filter((code) => !reference.includes(`\`${code}\``));
  assert.deepEqual(missing, []);
});
