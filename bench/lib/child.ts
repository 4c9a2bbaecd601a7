/**
 * Entry of the server child processes: `node --import tsx bench/lib/child.ts
 * phonebook|ceiling`. Reports `{ url }` over IPC once listening. The
 * Phonebook child is the product's own `startServer` (the code `npm start`
 * runs) configured from the environment the harness passes.
 */
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
} else {
  console.error(`unknown role ${role}`);
  process.exit(2);
}
