/**
 * Builds the dashboard (web/src, TypeScript + Preact) into web/dist with
 * esbuild: one minified ES module and one stylesheet. Run by `npm install`
 * (the `prepare` script) and `npm run build:web`; the server also runs it at
 * start when web/dist is missing or older than a source file, so a checkout
 * that skipped the install script, or an edited source, is served as it is. No network, no CDN: everything comes
 * from node_modules.
 */
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";

/**
 * web/ itself. Compiled (`npm start` runs dist/, docs/build.md) this module runs
 * from dist/web/, but the sources and the built assets stay in web/.
 */
export const WEB_ROOT =
  basename(dirname(import.meta.dirname)) === "dist"
    ? join(dirname(dirname(import.meta.dirname)), "web")
    : import.meta.dirname;
export const DIST = join(WEB_ROOT, "dist");

export interface BuildReport {
  /** Bytes of each output file. */
  outputs: Record<string, number>;
}

/**
 * Builds into a scratch directory, then renames each file into web/dist: a
 * server reading web/dist while another process builds never sees half a file.
 */
export async function buildDashboard(): Promise<BuildReport> {
  mkdirSync(DIST, { recursive: true });
  const scratch = mkdtempSync(join(WEB_ROOT, ".build-"));
  try {
    return await buildInto(scratch);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

async function buildInto(scratch: string): Promise<BuildReport> {
  const result = await build({
    entryPoints: [join(WEB_ROOT, "src", "main.tsx")],
    outdir: scratch,
    entryNames: "app",
    bundle: true,
    format: "esm",
    target: ["es2022", "chrome110", "firefox115", "safari16"],
    minify: true,
    sourcemap: false,
    jsx: "automatic",
    jsxImportSource: "preact",
    legalComments: "none",
    metafile: true,
    logLevel: "silent",
  });
  const outputs: Record<string, number> = {};
  for (const [file, info] of Object.entries(result.metafile.outputs)) {
    const name = file.split("/").pop()!;
    renameSync(join(scratch, name), join(DIST, name));
    outputs[`web/dist/${name}`] = info.bytes;
  }
  return { outputs };
}

function mtimeOf(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

/** Builds the dashboard unless web/dist holds a build newer than every source file. */
export async function ensureDashboardBuilt(): Promise<void> {
  const built = Math.min(mtimeOf(join(DIST, "app.js")), mtimeOf(join(DIST, "app.css")));
  const sources = readdirSync(join(WEB_ROOT, "src")).map((name) => mtimeOf(join(WEB_ROOT, "src", name)));
  if (built > 0 && sources.every((m) => m <= built)) return;
  await buildDashboard();
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const report = await buildDashboard();
  for (const [file, bytes] of Object.entries(report.outputs)) console.log(`${file}  ${bytes} bytes`);
}
