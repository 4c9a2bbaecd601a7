import Fastify, { type FastifyInstance } from "fastify";

/** What the ceiling answers: the bytes a Phonebook response of the scenario had. */
export interface CannedResponse {
  status: number;
  body: string;
}

/**
 * The ceiling: bare Fastify on the same Node, answering every request (any
 * method, any path, so the very same requests can be sent to it) with the
 * canned bytes of the current scenario. No auth, no validation, no store, no
 * serialization, no logging: what HTTP alone costs.
 */
export function createCeiling(): { app: FastifyInstance; setResponse(response: CannedResponse): void } {
  let current: CannedResponse = { status: 200, body: "{}" };
  const app = Fastify({ logger: false });
  app.all("*", async (_request, reply) => {
    reply.code(current.status).header("content-type", "application/json; charset=utf-8");
    return current.body;
  });
  return {
    app,
    setResponse(response) {
      current = response;
    },
  };
}
