import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { freePort } from "./processes.ts";

/** Debian's `pgbouncer` package (apt-get install pgbouncer); PB_TEST_PGBOUNCER overrides the path. */
export const PGBOUNCER = process.env.PB_TEST_PGBOUNCER ?? "/usr/sbin/pgbouncer";

export function hasPgBouncer(): boolean {
  return existsSync(PGBOUNCER);
}

export interface PgBouncer {
  /** DATABASE_URL through PgBouncer. */
  url: string;
  /** What PgBouncer wrote (its log goes to stderr). */
  output(): string;
  stop(): Promise<void>;
}

/**
 * A PgBouncer of this test's own, in transaction pooling mode, in front of one
 * PostgreSQL database (`target`, a DATABASE_URL), with `poolSize` server
 * connections: fewer than the clients hold, so consecutive transactions of one
 * client run on different server connections, as in production. It writes its
 * ini file in a temporary directory, listens on a free port of 127.0.0.1 and
 * resolves once a client can run a query through it (generous deadline).
 */
export async function startPgBouncer(
  target: string,
  options: { poolSize?: number } = {},
): Promise<PgBouncer> {
  const server = new URL(target);
  const database = server.pathname.slice(1);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "phonebook-pgbouncer-"));
  // PgBouncer refuses to run as root: it switches to the postgres user (-u), who must read the files.
  chmodSync(dir, 0o755);
  const ini = join(dir, "pgbouncer.ini");
  writeFileSync(
    ini,
    [
      "[databases]",
      `${database} = host=${server.hostname} port=${server.port || 5432} dbname=${database} user=${decodeURIComponent(server.username || "postgres")}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = any",
      "pool_mode = transaction",
      `default_pool_size = ${options.poolSize ?? 4}`,
      "max_client_conn = 200",
      "ignore_startup_parameters = extra_float_digits",
      "server_check_delay = 0",
      "",
    ].join("\n"),
    { mode: 0o644 },
  );
  const args = [...(process.getuid?.() === 0 ? ["-u", "postgres"] : []), ini];
  const child: ChildProcess = spawn(PGBOUNCER, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `postgres://${server.username || "postgres"}@127.0.0.1:${port}/${database}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`pgbouncer exited with ${child.exitCode}:\n${output}`);
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
      client.on("error", () => {});
      try {
        await client.connect();
        await client.query("SELECT 1");
        await client.end();
        break;
      } catch (error) {
        await client.end().catch(() => {});
        if (Date.now() > deadline)
          throw new Error(`pgbouncer did not accept a query in 30 s (${error}):\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, output: () => output, stop };
}
