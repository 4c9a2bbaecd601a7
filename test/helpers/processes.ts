import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { Redis } from "ioredis";
import { REDIS_URL } from "./env.ts";
import { startServerProcess as startServer } from "./server-process.ts";

/** A port that was free a moment ago (bind to 0, read, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  /** Everything the process wrote so far (pino JSON lines). */
  output(): string;
  stop(): Promise<void>;
}

/**
 * `phonebook serve` as a child process on a port of its choosing, with `env` on top of
 * a minimal environment; `script` replaces the entry point (e.g.
 * test/helpers/crashing-server.ts). Resolves once it logs that it is
 * listening; the process dies with the test process
 * (test/helpers/server-process.ts, test/helpers/children.ts).
 */
export async function startServerProcess(
  env: Record<string, string>,
  script: string[] = ["src/cli/main.ts", "serve"],
): Promise<ServerProcess> {
  const server = await startServer(env, { script });
  return {
    url: server.url,
    child: server.child,
    output: () => server.output.join("\n"),
    stop: () => server.kill("SIGTERM"),
  };
}

/** A random Redis key prefix for one test, and a way to delete every key under it. */
export function redisPrefix(): { prefix: string; cleanup(url?: string): Promise<void> } {
  const prefix = `pbtest:${randomBytes(6).toString("hex")}:`;
  return {
    prefix,
    async cleanup(url = REDIS_URL) {
      const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
      redis.on("error", () => {});
      try {
        await redis.connect();
        let cursor = "0";
        do {
          const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500);
          if (keys.length > 0) await redis.del(...keys);
          cursor = next;
        } while (cursor !== "0");
      } finally {
        redis.disconnect();
      }
    },
  };
}

/** Keys under `prefix` in the Redis at `url`. */
export async function redisKeys(prefix: string, url = REDIS_URL): Promise<string[]> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on("error", () => {});
  try {
    await redis.connect();
    return await redis.keys(`${prefix}*`);
  } finally {
    redis.disconnect();
  }
}
