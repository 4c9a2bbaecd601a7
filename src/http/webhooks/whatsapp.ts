import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { constantTimeEqual } from "../../domain/auth.ts";
import { now } from "../../domain/clock.ts";
import { type IngestReport, ingestObservations, pruneInboundReceipts } from "../../domain/inbound.ts";
import { ApiError } from "../../errors.ts";
import { isRetryableConflict } from "../../store/driver-errors.ts";
import { ErrorBody, WithRequestId } from "../schemas.ts";
import { runWrite } from "../write-transaction.ts";
import { observationsOf, parseDelivery, verifyMetaSignature, WHATSAPP_OBJECT } from "./meta-delivery.ts";

export interface WhatsappWebhookOptions {
  appSecret: string;
  verifyToken: string;
}

const HandshakeQuery = Type.Object({
  "hub.mode": Type.Optional(Type.String({ maxLength: 64 })),
  "hub.verify_token": Type.Optional(Type.String({ maxLength: 1024 })),
  "hub.challenge": Type.Optional(Type.String({ maxLength: 1024 })),
});

const Received = WithRequestId(
  Type.Object({
    received: Type.Literal(true),
    created: Type.Integer(),
    updated: Type.Integer(),
    merged: Type.Integer(),
    duplicates: Type.Integer(),
    unknown_phone_number_ids: Type.Array(Type.String()),
  }),
);

const WEBHOOK_ERRORS = { 400: ErrorBody, 401: ErrorBody, 413: ErrorBody, 500: ErrorBody, 503: ErrorBody };

/** A lost race (two deliveries creating one person) is resolved by running the delivery again. */
const ATTEMPTS = 4;
/** Receipts are pruned at most this often per process. */
const PRUNE_EVERY_MS = 60 * 60 * 1000;

/**
 * Meta's WhatsApp webhook (spec §6), registered only when META_APP_SECRET and
 * META_VERIFY_TOKEN are set. Bodies reach the handler as raw bytes (this
 * context's own content-type parser), so the signature is checked over exactly
 * what Meta signed before anything is parsed.
 */
export const whatsappWebhookRoutes: FastifyPluginAsyncTypebox<WhatsappWebhookOptions> = async (
  app,
  options,
) => {
  const { store } = app.services;
  const tags = ["webhooks"];
  let lastPrune = 0;

  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (_request, body, done) => done(null, body));

  app.get(
    "/whatsapp",
    {
      schema: {
        tags,
        summary: "Meta's subscription handshake",
        description:
          "Answers hub.challenge as text/plain when hub.mode is subscribe and hub.verify_token equals META_VERIFY_TOKEN; otherwise 403.",
        security: [],
        querystring: HandshakeQuery,
        response: {
          200: Type.String({ description: "The hub.challenge, verbatim (text/plain)" }),
          400: ErrorBody,
          403: ErrorBody,
        },
      },
    },
    async (request, reply) => {
      const query = request.query;
      const token = query["hub.verify_token"];
      const challenge = query["hub.challenge"];
      if (
        query["hub.mode"] !== "subscribe" ||
        token === undefined ||
        challenge === undefined ||
        !constantTimeEqual(token, options.verifyToken)
      ) {
        throw new ApiError("forbidden", "The verification token does not match.", {
          param: "hub.verify_token",
        });
      }
      reply.type("text/plain; charset=utf-8").header("x-content-type-options", "nosniff");
      return challenge;
    },
  );

  app.post(
    "/whatsapp",
    {
      schema: {
        tags,
        summary: "Meta's WhatsApp webhook deliveries",
        description:
          "Signed with X-Hub-Signature-256 (HMAC-SHA256 of the raw body with META_APP_SECRET). Upserts contacts, applies identity changes and marketing preferences in one transaction, then answers 200.",
        security: [],
        response: { 200: Received, ...WEBHOOK_ERRORS },
      },
    },
    async (request, reply) => {
      const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      const header = request.headers["x-hub-signature-256"];
      if (!verifyMetaSignature(options.appSecret, raw, typeof header === "string" ? header : undefined)) {
        throw new ApiError(
          "invalid_signature",
          "X-Hub-Signature-256 is missing or does not match the body; nothing was stored.",
          { param: "X-Hub-Signature-256" },
        );
      }
      const delivery = parseDelivery(raw);
      if (delivery.object !== WHATSAPP_OBJECT) {
        request.log.info({ object: delivery.object }, "webhook for another object ignored");
      }
      const observations = observationsOf(delivery);
      let report: IngestReport | undefined;
      for (let attempt = 1; report === undefined; attempt++) {
        try {
          report = await runWrite(request, reply, async (tx) => ({
            status: 200,
            body: await ingestObservations(tx, observations, now()),
          }));
        } catch (error) {
          const lostRace =
            isRetryableConflict(error) || (error instanceof ApiError && error.code === "contact_exists");
          if (!lostRace || attempt >= ATTEMPTS) throw error;
          request.log.debug({ attempt }, "webhook delivery lost a race; running it again");
        }
      }
      for (const id of report.unknown_phone_number_ids) {
        request.log.warn({ phone_number_id: id }, "webhook change for an unknown phone_number_id ignored");
      }
      for (const c of report.conflicts) {
        request.log.warn(c, "webhook identity held by another contact; both kept");
      }
      maybePrune();
      return {
        received: true as const,
        created: report.created,
        updated: report.updated,
        merged: report.merged,
        duplicates: report.duplicates,
        unknown_phone_number_ids: report.unknown_phone_number_ids,
      };
    },
  );

  function maybePrune(): void {
    const at = now();
    if (at - lastPrune < PRUNE_EVERY_MS) return;
    lastPrune = at;
    pruneInboundReceipts(store.db, at).catch((error) => {
      app.log.warn({ err: error }, "pruning webhook receipts failed");
    });
  }
};
