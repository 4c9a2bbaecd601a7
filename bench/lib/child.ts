/**
 * Entry of the server child processes: `node --import tsx bench/lib/child.ts
 * phonebook|ceiling`. Reports `{ url }` over IPC once listening. The
 * Phonebook child is the product's own `startServer` (the code `npm start`
 * runs) configured from the environment the harness passes.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { loadConfig } from "../../src/config.ts";
import { startServer } from "../../src/server.ts";
import { type CannedResponse, createCeiling } from "./ceiling.ts";

const role = process.argv[2];
const send = (message: unknown) => process.send?.(message);
// The harness went away (crash, Ctrl-C): do not linger.
process.on("disconnect", () => process.exit(0));

if (role === "phonebook") {
  const config = loadConfig(process.env, { port: 0, host: "127.0.0.1" });
  const server = await startServer(config, { print: () => {}, json: true });
  send({ url: server.url });
} else if (role === "ceiling") {
  const ceiling = createCeiling();
  process.on("message", (message) => {
    ceiling.setResponse(message as CannedResponse);
    send({ ok: true });
  });
  process.once("SIGTERM", () => {
    ceiling.app.close().then(() => process.exit(0));
  });
  const url = await ceiling.app.listen({ port: 0, host: "127.0.0.1" });
  send({ url });
} else if (role === "receiver") {
  // The outbound-webhook receiver of the webhook_delivery scenario: answers 204
  // at once and notes, per event id, the lag from the event's commit
  // (`created_at`) to its arrival. Its own process, so that autocannon's load
  // on the harness does not delay it.
  let lags: number[] = [];
  const seen = new Set<string>();
  let duplicates = 0;
  const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const arrived = Date.now();
      const event = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { id: string; created_at: string };
      if (seen.has(event.id)) duplicates++;
      else {
        seen.add(event.id);
        lags.push(arrived - Date.parse(event.created_at));
      }
      res.writeHead(204).end();
    });
  });
  process.on("message", (message) => {
    const { cmd } = message as { cmd: string };
    if (cmd === "take") {
      // The lags noted since the last take, and the count of distinct events so far.
      send({ lags, distinct: seen.size, duplicates });
      lags = [];
    }
  });
  server.listen(0, "127.0.0.1", () =>
    send({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }),
  );
} else {
  console.error(`unknown role ${role}`);
  process.exit(2);
}
