import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import Fastify, { type FastifyInstance } from "fastify";
import { Type } from "typebox";
import { ApiError } from "../../src/errors.ts";
import { principalOf, protect } from "../../src/http/auth.ts";
import { toApiError } from "../../src/http/errors.ts";
import { runWrite } from "../../src/http/write-transaction.ts";
import { storeKinds } from "../helpers/env.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";

/**
 * A surface written without any knowledge of idempotency or rate limits (its
 * own error shape, a header of its own, a body without request_id) gets both
 * from `protect()` and `runWrite()` alone.
 */
for (const kind of storeKinds()) {
  describe(`idempotency and rate limits on another surface [${kind}]`, () => {
    let h: Harness;
    let surface: FastifyInstance;
    let runs = 0;

    before(async () => {
      h = await createHarness(kind, {}, { realRateLimits: true });
      surface = Fastify();
      surface.decorate("services", h.app.services);
      surface.decorateRequest("principal", undefined);
      // Kapso-style errors: { error: "<message>", code }.
      surface.setErrorHandler((error, _request, reply) => {
        const apiError = toApiError(error);
        if (apiError.headers) reply.headers(apiError.headers);
        reply.status(apiError.status).send({ error: apiError.message, code: apiError.code });
      });
      await surface.register(
        async (app) => {
          protect(app);
          app.post(
            "/notes",
            {
              schema: {
                body: Type.Object({ text: Type.String({ maxLength: 20 }) }, { additionalProperties: false }),
              },
            },
            async (request, reply) => {
              const { text } = request.body as { text: string };
              const { organization } = principalOf(request);
              return runWrite(request, reply, async (tx) => {
                runs += 1;
                if (text === "forbidden") throw new ApiError("invalid_field_value", "No.", { param: "text" });
                const id = `note:${organization.id}:${runs}`;
                await tx.insertInto("settings").values({ key: id, value: text }).execute();
                reply.header("location", `/notes/${id}`);
                return { status: 201, body: { id, text } };
              });
            },
          );
        },
        { prefix: "/other/v1" },
      );
      await surface.ready();
    });
    after(async () => {
      await surface.close();
      await h.close();
    });

    const send = (headers: Record<string, string>, payload: object) =>
      surface.inject({ method: "POST", url: "/other/v1/notes", headers, payload });

    test("replays with the surface's own headers and body; errors in the surface's shape", async () => {
      const tenant = await h.tenant("Surface Co");
      const headers = { ...tenant.auth, "idempotency-key": "note-1" };
      const first = await send(headers, { text: "hello" });
      const second = await send(headers, { text: "hello" });
      assert.equal(first.statusCode, 201, first.body);
      assert.equal(second.statusCode, 201, second.body);
      assert.equal(runs, 1, "the write ran once");
      assert.equal(second.body, first.body, "a body without request_id is replayed byte for byte");
      assert.equal(second.headers.location, first.headers.location);
      assert.equal(first.headers["idempotent-replayed"], "false");
      assert.equal(second.headers["idempotent-replayed"], "true");
      assert.equal(second.headers["x-ratelimit-limit"], "60");
      const stored = await h.store.db
        .selectFrom("settings")
        .selectAll()
        .where("value", "=", "hello")
        .execute();
      assert.equal(stored.length, 1);

      const reuse = await send(headers, { text: "other" });
      assert.deepEqual(reuse.json(), {
        error: "This Idempotency-Key was already used for a different request (method, path or body).",
        code: "idempotency_key_reuse",
      });

      const badKey = await send({ ...tenant.auth, "idempotency-key": "" }, { text: "x" });
      assert.equal(badKey.statusCode, 400);
      assert.equal(badKey.json().code, "invalid_idempotency_key");

      const refused = { ...tenant.auth, "idempotency-key": "note-2" };
      const no = await send(refused, { text: "forbidden" });
      const noAgain = await send(refused, { text: "forbidden" });
      assert.equal(no.statusCode, 400);
      assert.equal(noAgain.statusCode, 400);
      assert.deepEqual(noAgain.json(), no.json(), "the recorded error, rendered by this surface");
      assert.equal(noAgain.headers["idempotent-replayed"], "true");
      assert.equal(runs, 2);

      const tooLong = { ...tenant.auth, "idempotency-key": "note-3" };
      const invalid = await send(tooLong, { text: "x".repeat(21) });
      const invalidAgain = await send(tooLong, { text: "x".repeat(21) });
      assert.equal(invalid.statusCode, 400, invalid.body);
      assert.equal(invalidAgain.headers["idempotent-replayed"], "true");
      assert.equal(runs, 2, "schema failures never reach the handler");
    });
  });
}
