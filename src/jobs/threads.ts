import { Worker } from "node:worker_threads";

/**
 * Starts a worker thread running the module `name` (without extension) next
 * to `base` (an `import.meta.url`). Compiled (dist/): the `.js` module.
 * Under tsx (tests, `npm run dev`) a worker does not inherit the TypeScript
 * loader, so it registers tsx's loader first and then imports the `.ts` module.
 */
export function startThread(base: string, name: string, workerData: unknown): Worker {
  if (!base.endsWith(".ts")) return new Worker(new URL(`./${name}.js`, base), { workerData });
  const url = new URL(`./${name}.ts`, base).href;
  const tsx = import.meta.resolve("tsx/esm/api");
  const boot = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url)}); });`;
  return new Worker(boot, { eval: true, workerData });
}
