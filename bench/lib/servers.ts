import { type ChildProcess, fork } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { buildApp } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import type { Store } from "../../src/store/store.ts";
import { type CannedResponse, createCeiling } from "./ceiling.ts";

/** Where the servers run: each in its own process (default), or in the harness's own process. */
export type ServerMode = "child" | "inprocess";

export interface Target {
  url: string;
  /** The process serving it (for RSS sampling). */
  pid: number;
  stop(): Promise<void>;
}

/** A target that can be stopped and started again (same store, same configuration, new process). */
export interface RestartableTarget extends Target {
  restart(): Promise<void>;
}

export interface CeilingTarget extends Target {
  setResponse(response: CannedResponse): Promise<void>;
}

/** Compiled (`npm run bench` runs dist/) or through tsx (the smoke test runs the sources). */
const COMPILED = import.meta.url.endsWith(".js");
const CHILD = join(import.meta.dirname, COMPILED ? "child.js" : "child.ts");

function forkChild(
  role: string,
  env: Record<string, string | undefined>,
  nodeArgs: string[] = [],
): Promise<{ child: ChildProcess; url: string }> {
  const child = fork(CHILD, [role], {
    execArgv: [...(COMPILED ? [] : ["--import", "tsx"]), ...nodeArgs],
    env,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) =>
      reject(new Error(`${role} server exited with ${code} before listening`));
    child.once("exit", onExit);
    child.once("error", reject);
    child.once("message", (message) => {
      child.off("exit", onExit);
      resolve({ child, url: (message as { url: string }).url });
    });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

/** The Phonebook server, configured like `npm start` through the environment. */
export async function startPhonebook(
  mode: ServerMode,
  env: Record<string, string>,
  store: Store,
  cpuProfileDir?: string,
): Promise<RestartableTarget> {
  let current = await startPhonebookOnce(mode, env, store, cpuProfileDir);
  return {
    get url() {
      return current.url;
    },
    get pid() {
      return current.pid;
    },
    stop: () => current.stop(),
    async restart() {
      await current.stop();
      current = await startPhonebookOnce(mode, env, store, cpuProfileDir);
    },
  };
}

async function startPhonebookOnce(
  mode: ServerMode,
  env: Record<string, string>,
  store: Store,
  /** Directory for a V8 CPU profile of the server (child mode), written when it stops. */
  cpuProfileDir?: string,
): Promise<Target> {
  if (mode === "child") {
    const { DATABASE_URL: _u, DATA_DIR: _d, PORT: _p, ...inherited } = process.env;
    const nodeArgs = cpuProfileDir ? ["--cpu-prof", `--cpu-prof-dir=${cpuProfileDir}`] : [];
    const { child, url } = await forkChild("phonebook", { ...inherited, ...env }, nodeArgs);
    return { url, pid: child.pid!, stop: () => stopChild(child) };
  }
  const config = loadConfig({ ...env }, { port: 0, host: "127.0.0.1" });
  const app = await buildApp(config, { store });
  const url = await app.listen({ port: 0, host: "127.0.0.1" });
  return { url, pid: process.pid, stop: () => app.close() };
}

export async function startCeiling(mode: ServerMode): Promise<CeilingTarget> {
  if (mode === "child") {
    const { child, url } = await forkChild("ceiling", { ...process.env });
    return {
      url,
      pid: child.pid!,
      stop: () => stopChild(child),
      setResponse: (response) =>
        new Promise((resolve) => {
          child.once("message", () => resolve());
          child.send(response);
        }),
    };
  }
  const ceiling = createCeiling();
  const url = await ceiling.app.listen({ port: 0, host: "127.0.0.1" });
  return {
    url,
    pid: process.pid,
    stop: () => ceiling.app.close(),
    async setResponse(response) {
      ceiling.setResponse(response);
    },
  };
}

/** The webhook receiver of the webhook_delivery scenario, in a child process of its own. */
export interface ReceiverTarget extends Target {
  /** Lags (ms) of the events received since the last call, and the distinct events received so far. */
  take(): Promise<{ lags: number[]; distinct: number; duplicates: number }>;
}

export async function startReceiver(): Promise<ReceiverTarget> {
  const { child, url } = await forkChild("receiver", { ...process.env });
  return {
    url,
    pid: child.pid!,
    stop: () => stopChild(child),
    take: () =>
      new Promise((resolve) => {
        child.once("message", (message) => resolve(message as Awaited<ReturnType<ReceiverTarget["take"]>>));
        child.send({ cmd: "take" });
      }),
  };
}

/** Resident set size of a process now, in bytes (Linux /proc; 0 where unavailable). */
export function rssOf(pid: number): number {
  if (pid === process.pid) return process.memoryUsage.rss();
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Samples a process's RSS every 100 ms until stopped; returns the peak in bytes. */
export function rssSampler(pid: number): { stop(): number } {
  let peak = rssOf(pid);
  const timer = setInterval(() => {
    peak = Math.max(peak, rssOf(pid));
  }, 100);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, rssOf(pid));
    },
  };
}

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ: 100 on Linux everywhere that matters). */
const USER_HZ = 100;

/** User + system CPU seconds from a `/proc/…/stat` file; NaN when it cannot be read. */
function statCpuSeconds(path: string): number {
  try {
    const stat = readFileSync(path, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
  } catch {
    return Number.NaN;
  }
}

/**
 * CPU seconds of a process's main thread only (its JavaScript event loop:
 * the thread that answers requests), without its worker threads.
 */
export function mainThreadCpuSecondsOf(pid: number): number {
  return statCpuSeconds(`/proc/${pid}/task/${pid}/stat`);
}

/**
 * CPU time (user + system) a process has used so far, in seconds. Under a
 * shared, loaded machine, CPU per request is steadier than requests per
 * second: it does not count the time the process waited for a core.
 */
export function cpuSecondsOf(pid: number): number {
  if (pid === process.pid) {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1e6;
  }
  return statCpuSeconds(`/proc/${pid}/stat`);
}
