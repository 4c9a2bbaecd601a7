import { createHash } from "node:crypto";
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { threadId, Worker } from "node:worker_threads";

/**
 * Starts a worker thread running the module `name` (without extension) next
 * to `base` (an `import.meta.url`). Compiled (dist/): the `.js` module.
 * Under tsx (tests, `npm run dev`) a worker does not inherit the TypeScript
 * loader: it runs the module's sources bundled by esbuild (`devBundle`), or,
 * if that fails, registers tsx's loader first and then imports the `.ts` module.
 */
export function startThread(base: string, name: string, workerData: unknown): Worker {
  if (!base.endsWith(".ts")) return new Worker(new URL(`./${name}.js`, base), { workerData });
  const entry = new URL(`./${name}.ts`, base);
  const bundle = devBundle(entry, name);
  if (bundle) return new Worker(bundle, { workerData });
  const tsx = import.meta.resolve("tsx/esm/api");
  const boot = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(boot, { eval: true, workerData });
}

const bundles = new Map<string, URL | null>();

/**
 * Under tsx only: the thread's own sources bundled into one module by esbuild
 * (which tsx compiles with too), packages left to Node, written once per
 * content to `.tmp/` in the repository (where Node finds the packages). A
 * thread then starts in about a tenth of the time it takes to register tsx's
 * loader in it and resolve its ~450 modules through that loader (~0.6 s of
 * CPU per thread in the tests). Null when it cannot be built.
 */
function devBundle(entry: URL, name: string): URL | null {
  const known = bundles.get(entry.href);
  if (known !== undefined) return known;
  let bundle: URL | null = null;
  try {
    const esbuild = createRequire(import.meta.url)("esbuild") as typeof import("esbuild");
    const built = esbuild.buildSync({
      entryPoints: [fileURLToPath(entry)],
      bundle: true,
      packages: "external",
      platform: "node",
      format: "esm",
      target: "node20",
      write: false,
    });
    const text = built.outputFiles[0]!.text;
    const dir = fileURLToPath(new URL("../../.tmp/", import.meta.url));
    const file = join(dir, `${name}-${createHash("sha256").update(text).digest("hex").slice(0, 16)}.mjs`);
    if (!existsSync(file)) {
      mkdirSync(dir, { recursive: true });
      const partial = `${file}.${process.pid}.${threadId}`;
      writeFileSync(partial, text);
      renameSync(partial, file); // whole or absent, when several test processes write it at once
    }
    bundle = pathToFileURL(file);
  } catch {
    bundle = null;
  }
  bundles.set(entry.href, bundle);
  return bundle;
}
