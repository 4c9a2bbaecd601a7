import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";

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
 * Starts the real server (`node --import tsx src/cli/main.ts serve`) on a free
 * port with `env` (DATA_DIR or DATABASE_URL, ...) and resolves once it listens.
 * `preload` modules are loaded with `--import` before the CLI (the soak's monitor).
 */
export async function startServerProcess(
  env: Record<string, string>,
  options: { preload?: string[]; ipc?: boolean; startTimeoutMs?: number } = {},
): Promise<ServerProcess> {
  const args = [
    "--import",
    "tsx",
    ...(options.preload ?? []).flatMap((p) => ["--import", p]),
    "src/cli/main.ts",
    "serve",
  ];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", PORT: "0", LOG_LEVEL: "info", ...env },
    stdio: options.ipc ? ["ignore", "pipe", "pipe", "ipc"] : ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      const ms = options.startTimeoutMs ?? 30_000;
      reject(new Error(`server did not start within ${ms} ms:\n${output.join("\n")}`));
    }, options.startTimeoutMs ?? 30_000);
    const onLine = (line: string) => {
      output.push(line);
      if (output.length > 1000) output.splice(0, 500);
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    for (const stream of [child.stdout!, child.stderr!]) {
      let buffer = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk: string) => {
        buffer += chunk;
        const lines = buffer.split("\n");
        buffer = lines.pop() ?? "";
        for (const line of lines) onLine(line);
      });
    }
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code ?? signal}) before listening:\n${output.join("\n")}`));
    });
  });
  return {
    child,
    url,
    output,
    exited,
    async kill(signal = "SIGKILL") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
