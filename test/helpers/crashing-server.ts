/**
 * A server process for crash tests: the real app, plus a fault that kills
 * this process with SIGKILL inside the write transaction — after the write and
 * its idempotency record, before commit — when a request carries
 * `X-Test-Crash: kill`. Started by test/helpers/processes.ts; never shipped.
 */
import { buildApp } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";

const config = loadConfig(process.env);
const app = await buildApp(config, {
  writes: {
    beforeCommit(request) {
      if (request.headers["x-test-crash"] === "kill") process.kill(process.pid, "SIGKILL");
    },
  },
});
await app.listen({ port: config.port, host: config.host });
