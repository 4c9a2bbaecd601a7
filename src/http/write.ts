import type { FastifyReply, FastifyRequest } from "fastify";
import type { Tx } from "../store/store.ts";

export interface WriteResult<T> {
  status: number;
  body: T;
}

/**
 * Every write of every surface goes through here: `fn` runs in one
 * transaction that it receives, and returns the status and body to send.
 * This is the single place where the idempotency layer records the key and
 * the response in the same transaction as the side effect.
 */
export async function runWrite<T>(
  request: FastifyRequest,
  reply: FastifyReply,
  fn: (tx: Tx) => Promise<WriteResult<T>>,
): Promise<T> {
  const { store } = request.server.services;
  const result = await store.transaction(fn);
  reply.status(result.status);
  return result.body;
}
