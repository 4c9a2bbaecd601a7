/**
 * Builds the dashboard (web/src, TypeScript + Preact) into web/dist with
 * esbuild: one minified ES module and one stylesheet. Run by `npm install`
 * (the `prepare` script) and `npm run build:web`; the server also runs it at
 * start when web/dist is missing, so a checkout that skipped the install
 * script still serves the dashboard. No network, no CDN: everything comes
 * from node_modules.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";

export const WEB_ROOT = import.meta.dirname;
export const DIST = join(WEB_ROOT, "dist");

export interface BuildReport {
  /** Bytes of each output file. */
  outputs: Record<string, number>;
}

export async function buildDashboard(): Promise<BuildReport> {
  const result = await build({
    entryPoints: [join(WEB_ROOT, "src", "main.tsx")],
    outdir: DIST,
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
  for (const [file, info] of Object.entries(result.metafile.outputs)) outputs[file] = info.bytes;
  return { outputs };
}

/** Builds the dashboard unless web/dist already holds it. */
export async function ensureDashboardBuilt(): Promise<void> {
  if (existsSync(join(DIST, "app.js")) && existsSync(join(DIST, "app.css"))) return;
  await buildDashboard();
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const report = await buildDashboard();
  for (const [file, bytes] of Object.entries(report.outputs)) console.log(`${file}  ${bytes} bytes`);
}
