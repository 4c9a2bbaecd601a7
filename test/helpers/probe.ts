/** Probes of the real servers, shared by `npm test` and `npm run test:reliability`. */
import { Socket } from "node:net";
import pg from "pg";
import { PG_ADMIN_URL, REDIS_URL } from "./env.ts";

/** undefined when PostgreSQL answers, otherwise the problem. */
export async function pgAvailable(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 30_000 });
  try {
    await client.connect();
    await client.query("SELECT 1");
    return undefined;
  } catch (error) {
    return (error as Error).message;
  } finally {
    await client.end().catch(() => {});
  }
}

export function redisAvailable(): Promise<string | undefined> {
  const url = new URL(REDIS_URL);
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (problem: string | undefined) => {
      socket.destroy();
      resolve(problem);
    };
    socket.setTimeout(30_000, () => done("timeout")); // generous: a loaded machine answers late
    socket.once("error", (error) => done(error.message));
    socket.connect(Number(url.port || 6379), url.hostname, () => {
      socket.write("PING\r\n");
      socket.once("data", (data) => done(data.toString().startsWith("+PONG") ? undefined : data.toString()));
    });
  });
}
