/**
 * Outbound webhooks under load (issue 14): contact updates at a steady
 * 1,000/s against one healthy receiver on 127.0.0.1; reports events/s
 * delivered and the delivery lag (the event's commit time, `created_at`, to
 * the receiver's arrival) at p50/p99. The run's rows/s is events delivered
 * per second of the whole run (driving plus draining).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { BenchContext, Json, Scenario } from "./scenarios.ts";

const RATE_PER_SECOND = 1000;
const IN_FLIGHT = 32;
const DURATION_S = Number(process.env.PB_BENCH_WEBHOOK_SECONDS ?? 5);

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export const WEBHOOK_SCENARIOS: Scenario[] = [
  {
    kind: "bulk",
    id: "webhook_delivery",
    title: `webhook delivery: ${RATE_PER_SECOND} contact updates/s to one receiver`,
    async run(ctx: BenchContext, url: string) {
      const lags: number[] = [];
      const seen = new Set<string>();
      const receiver = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
          const arrived = Date.now();
          const event = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Json;
          if (!seen.has(event.id)) {
            seen.add(event.id);
            lags.push(arrived - Date.parse(event.created_at));
          }
          res.writeHead(204).end();
        });
      });
      await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
      const port = (receiver.address() as AddressInfo).port;
      const headers = { authorization: `Bearer ${ctx.tenant.key}`, "content-type": "application/json" };
      const created = await fetch(`${url}/v1/webhook_subscriptions`, {
        method: "POST",
        headers,
        body: JSON.stringify({ url: `http://127.0.0.1:${port}/hook`, events: ["contact.updated"] }),
      });
      const subscription = (await created.json()) as Json;
      if (created.status !== 201) throw new Error(`subscription: ${JSON.stringify(subscription)}`);
      try {
        const contacts = ctx.sample.slice(0, 200);
        let sent = 0;
        let acknowledged = 0;
        const statuses = new Map<number, number>();
        const start = performance.now();
        const end = start + DURATION_S * 1000;
        const worker = async () => {
          while (performance.now() < end) {
            // Paced: request n is not sent before n / rate seconds.
            const n = sent++;
            const due = start + (n * 1000) / RATE_PER_SECOND;
            const wait = due - performance.now();
            if (wait > 0) await new Promise((r) => setTimeout(r, wait));
            const contact = contacts[n % contacts.length]!;
            const res = await fetch(`${url}/v1/contacts/${contact.id}`, {
              method: "PATCH",
              headers,
              body: JSON.stringify({ metadata: { bench_n: n } }),
            });
            await res.arrayBuffer();
            if (res.status === 200) acknowledged++;
            else statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          }
        };
        await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
        const driven = (performance.now() - start) / 1000;
        const deadline = Date.now() + 120_000;
        while (seen.size < acknowledged && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        const total = (performance.now() - start) / 1000;
        lags.sort((a, b) => a - b);
        console.error(
          `  webhook_delivery: ${acknowledged} updates in ${driven.toFixed(1)} s (${Math.round(acknowledged / driven)}/s), ` +
            `${seen.size} events delivered in ${total.toFixed(1)} s (${Math.round(seen.size / total)} events/s), ` +
            `lag p50 ${quantile(lags, 0.5)} ms, p99 ${quantile(lags, 0.99)} ms` +
            (statuses.size > 0 ? `; other answers ${JSON.stringify(Object.fromEntries(statuses))}` : ""),
        );
        if (seen.size < acknowledged)
          throw new Error(`${acknowledged - seen.size} events not delivered in 2 minutes`);
        return { rows: seen.size };
      } finally {
        await fetch(`${url}/v1/webhook_subscriptions/${subscription.data.id}`, { method: "DELETE", headers });
        await new Promise<void>((resolve) => receiver.close(() => resolve()));
      }
    },
  },
];
