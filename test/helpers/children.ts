/**
 * Every process a test starts goes through `spawnChild`, so that none
 * outlives the test process (an orphan under PID 1 holds ports, files and a
 * core long after its test failed):
 *
 * - each child leads a process group of its own (`detached`), and the group
 *   is killed with SIGKILL when the test process exits for any reason it can
 *   see — normal exit, `--test-force-exit`, an uncaught error, SIGTERM from
 *   the test runner when a file times out, SIGINT/SIGHUP — which also takes
 *   whatever the child started (the bench's server children);
 * - node children also load `die-with-parent.mjs`, which kills the child
 *   when its parent disappears without a word (SIGKILL, OOM killer).
 *
 * Readiness is a signal (a line on the child's output), never a sleep; the
 * deadline is generous (START_DEADLINE_MS, 5 min, PB_TEST_START_DEADLINE_MS)
 * because a loaded machine can take long to start a process, and the
 * deadline only matters for a child that will never be ready.
 */
import { type ChildProcess, type SpawnOptions, spawn } from "node:child_process";
import { join } from "node:path";

export const START_DEADLINE_MS = Number(process.env.PB_TEST_START_DEADLINE_MS ?? 300_000);

/** `--import` this in a node child so that it dies with the test process. */
export const DIE_WITH_PARENT = join(import.meta.dirname, "die-with-parent.mjs");

const live = new Set<ChildProcess>();

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
}

/** SIGKILLs every child still running (and its process group). Synchronous: safe in 'exit'. */
export function killAllChildren(): void {
  for (const child of live) killGroup(child);
  live.clear();
}

let installed = false;
function installHandlers(): void {
  if (installed) return;
  installed = true;
  process.on("exit", killAllChildren);
  for (const [signal, code] of [
    ["SIGTERM", 143],
    ["SIGINT", 130],
    ["SIGHUP", 129],
  ] as const) {
    process.once(signal, () => {
      killAllChildren();
      process.exit(code);
    });
  }
}

/** `spawn` in a process group of its own, killed (group and all) when this process exits. */
export function spawnChild(command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
  installHandlers();
  const child = spawn(command, args, { ...options, detached: true });
  live.add(child);
  child.once("exit", () => live.delete(child));
  return child;
}

/** A node child (`process.execPath`) that also dies when this process dies without warning. */
export function spawnNode(args: string[], options: SpawnOptions = {}): ChildProcess {
  return spawnChild(process.execPath, ["--import", DIE_WITH_PARENT, ...args], options);
}

/** Kills the child's process group with `signal` and waits for the child to exit. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
  // A child that ignores SIGTERM is killed; generous, since a loaded machine is slow to shut down.
  const timer = signal === "SIGKILL" ? undefined : setTimeout(() => killGroup(child), 60_000);
  await exited;
  if (timer) clearTimeout(timer);
}

/**
 * Resolves with the first match of `pattern` in the child's stdout/stderr
 * lines; rejects if the child exits first or after `deadlineMs` (then the
 * child is killed). `onLine` sees every line.
 */
export function waitForLine(
  child: ChildProcess,
  pattern: RegExp,
  options: { deadlineMs?: number; onLine?: (line: string) => void; describe?: () => string } = {},
): Promise<RegExpExecArray> {
  const deadlineMs = options.deadlineMs ?? START_DEADLINE_MS;
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const timer = setTimeout(() => {
      killGroup(child);
      finish(() =>
        reject(new Error(`no "${pattern.source}" within ${deadlineMs} ms:\n${options.describe?.() ?? ""}`)),
      );
    }, deadlineMs);
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      let buffer = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk: string) => {
        buffer += chunk;
        const lines = buffer.split("\n");
        buffer = lines.pop() ?? "";
        for (const line of lines) {
          options.onLine?.(line);
          const match = pattern.exec(line);
          if (match) finish(() => resolve(match));
        }
      });
    }
    child.once("exit", (code, signal) => {
      finish(() =>
        reject(
          new Error(`exited (${code ?? signal}) before "${pattern.source}":\n${options.describe?.() ?? ""}`),
        ),
      );
    });
  });
}
