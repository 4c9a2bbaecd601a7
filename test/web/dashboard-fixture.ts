/**
 * What the browser suites share: a real server process on a fresh store of
 * one kind, an organisation with one account, labels and contacts, and a
 * browser. Everything is torn down by `close()`, even after a failure.
 */
import assert from "node:assert/strict";
import type { StoreKind } from "../helpers/env.ts";
import { createTestStore, type Json, seedOrganization, type TestStore } from "../helpers/harness.ts";
import { type ServerProcess, startServerProcess } from "../helpers/server-process.ts";

export interface DashboardFixture {
  url: string;
  key: string;
  orgId: string;
  phoneNumberId: string;
  testStore: TestStore;
  server: ServerProcess;
  /** A /v1 request with the organisation's key, answered as parsed JSON (status checked). */
  api(method: string, path: string, body?: unknown, status?: number): Promise<Json>;
  close(): Promise<void>;
}

let counter = 0;

export async function startDashboardFixture(
  kind: StoreKind,
  seed: { people: number; zeds?: boolean } = { people: 60, zeds: true },
  /** More environment for the server process (e.g. WEBHOOKS_ALLOW_HTTP for a receiver on 127.0.0.1). */
  env: Record<string, string> = {},
): Promise<DashboardFixture> {
  counter += 1;
  const testStore = await createTestStore(kind);
  let server: ServerProcess | undefined;
  try {
    await testStore.store.migrate();
    const phoneNumberId = `${770000000000 + process.pid * 100 + counter}`;
    const org = await seedOrganization(testStore.store.db, {
      name: "Toko Maju",
      phoneNumberId,
      phoneNumber: "+628111222333",
    });
    server = await startServerProcess({ ...testStore.env, ...env }, { startTimeoutMs: 120_000 });
    const url = server.url;
    const api = async (method: string, path: string, body?: unknown, status?: number) => {
      const res = await fetch(`${url}/v1${path}`, {
        method,
        headers: {
          authorization: `Bearer ${org.key}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      if (status !== undefined) assert.equal(res.status, status, text);
      else assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`);
      return text ? JSON.parse(text) : undefined;
    };
    const contacts: Array<Record<string, unknown>> = [];
    for (let i = 0; i < seed.people; i++) {
      contacts.push({
        phone_number: `+62812${String(1000000 + i).padStart(7, "0")}`,
        name: `Person ${String(i).padStart(3, "0")}`,
        email: `person${i}@example.com`,
        metadata: { tier: i % 2 === 0 ? "gold" : "silver" },
      });
    }
    if (seed.zeds) {
      for (const [i, n] of ["Zed Alpha", "Zed Bravo", "Zed Charlie"].entries()) {
        contacts.push({ phone_number: `+62813900000${i}`, name: n });
      }
    }
    for (let i = 0; i < contacts.length; i += 1000) {
      await api("POST", `/${phoneNumberId}/contacts/batch`, {
        mode: "create",
        contacts: contacts.slice(i, i + 1000),
      });
    }
    return {
      url,
      key: org.key,
      orgId: org.orgId,
      phoneNumberId,
      testStore,
      server,
      api,
      async close() {
        await server?.kill("SIGTERM");
        await testStore.drop();
      },
    };
  } catch (error) {
    await server?.kill("SIGKILL");
    await testStore.drop();
    throw error;
  }
}
