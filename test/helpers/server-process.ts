import type { ChildProcess } from "node:child_process";
import { join } from "node:path";
import { START_DEADLINE_MS, spawnNode, stopChild, waitForLine } from "./children.ts";

const ROOT = join(import.meta.dirname, "..", "..");

export interface ServerProcess {
  child: ChildProcess;
  /** http://127.0.0.1:<port> */
  url: string;
  /** The last lines the process wrote (pino JSON on stdout, anything on stderr). */
  output: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts the real server (`node --import tsx src/cli/main.ts serve`, or
 * `script` instead of the CLI) on a free port with `env` (DATA_DIR or
 * DATABASE_URL, ...) and resolves once it logs that it listens. `preload`
 * modules are loaded with `--import` before the CLI (the soak's monitor).
 * The process dies with the test process (test/helpers/children.ts); the
 * start deadline is generous (START_DEADLINE_MS) and only catches a hang.
 */
export async function startServerProcess(
  env: Record<string, string>,
  options: { preload?: string[]; ipc?: boolean; startTimeoutMs?: number; script?: string[] } = {},
): Promise<ServerProcess> {
  const args = [
    "--import",
    "tsx",
    ...(options.preload ?? []).flatMap((p) => ["--import", p]),
    ...(options.script ?? ["src/cli/main.ts", "serve"]),
  ];
  const child = spawnNode(args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", PORT: "0", LOG_LEVEL: "info", ...env },
    stdio: options.ipc ? ["ignore", "pipe", "pipe", "ipc"] : ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
  });
  const match = await waitForLine(child, /Server listening at (http:\/\/127\.0\.0\.1:\d+)/, {
    deadlineMs: options.startTimeoutMs ?? START_DEADLINE_MS,
    onLine: (line) => {
      output.push(line);
      if (output.length > 1000) output.splice(0, 500);
    },
    describe: () => output.join("\n"),
  });
  return {
    child,
    url: match[1]!,
    output,
    exited,
    async kill(signal = "SIGKILL") {
      await stopChild(child, signal);
      await exited;
    },
  };
}
