import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, test } from "node:test";
import { storeKinds } from "../helpers/env.ts";
import { createHarness, type Harness, type Tenant } from "../helpers/harness.ts";

/** Sends raw bytes to a listening server and resolves with everything it answers before closing. */
function rawExchange(url: string, bytes: string | Buffer): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let received = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close; received ${received}`));
    }, 60_000);
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      received += chunk;
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(received);
    });
    socket.write(bytes);
  });
}

function parse(raw: string) {
  const end = raw.indexOf("\r\n\r\n");
  assert.ok(end > 0, `an HTTP response: ${JSON.stringify(raw.slice(0, 200))}`);
  const [statusLine, ...lines] = raw.slice(0, end).split("\r\n");
  const headers = Object.fromEntries(
    lines.map((line) => [
      line.slice(0, line.indexOf(":")).toLowerCase(),
      line.slice(line.indexOf(":") + 1).trim(),
    ]),
  );
  return { status: Number(statusLine!.split(" ")[1]), headers, body: JSON.parse(raw.slice(end + 4)) };
}

describe("Node's HTTP parser errors come back in the error envelope", () => {
  let h: Harness;
  let url: string;
  before(async () => {
    h = await createHarness("sqlite");
    url = await h.app.listen({ port: 0, host: "127.0.0.1" });
  });
  after(async () => h?.close());

  test("431: headers over the limit", async () => {
    const res = parse(
      await rawExchange(url, `GET /v1/me HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`),
    );
    assert.equal(res.status, 431);
    assert.equal(res.body.error.code, "headers_too_large");
    assert.equal(res.body.error.type, "invalid_request_error");
    assert.match(res.body.error.request_id, /^req_/);
    assert.equal(res.headers["x-request-id"], res.body.error.request_id);
    assert.equal(res.headers["x-content-type-options"], "nosniff");
    assert.equal(res.headers["cache-control"], "no-store");
    assert.match(res.headers["content-type"] ?? "", /^application\/json/);
  });

  test("431: a query string over the limit", async () => {
    const res = parse(
      await rawExchange(url, `GET /v1/contacts?search=${"b".repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`),
    );
    assert.equal(res.status, 431);
    assert.equal(res.body.error.code, "headers_too_large");
  });

  test("400: a smuggling-shaped request (Content-Length and Transfer-Encoding)", async () => {
    const res = parse(
      await rawExchange(
        url,
        "POST /v1/contacts HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      ),
    );
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, "malformed_request");
    assert.equal(res.headers["x-request-id"], res.body.error.request_id);
    assert.equal(res.headers["x-frame-options"], "DENY");
  });

  test("400 on a Kapso path is in the platform's shape", async () => {
    const res = parse(
      await rawExchange(url, "GET /platform/v1/whatsapp/contacts HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"),
    );
    assert.equal(res.status, 400);
    assert.equal(res.body.code, "malformed_request");
    assert.equal(typeof res.body.error, "string");
  });
});

for (const kind of storeKinds()) {
  describe(`text that is not text [${kind}]`, () => {
    let h: Harness;
    let t: Tenant;
    let account: { phoneNumberId: string };
    before(async () => {
      h = await createHarness(kind);
      t = await h.tenant();
      account = await h.account(t.orgId);
    });
    after(async () => h?.close());

    const post = (payload: string | Buffer) =>
      h.inject({
        method: "POST",
        url: `/v1/${account.phoneNumberId}/contacts`,
        headers: { ...t.auth, "content-type": "application/json" },
        payload,
      });

    test("invalid UTF-8 in a JSON body is 400 invalid_json, nothing stored", async () => {
      const body = Buffer.concat([
        Buffer.from('{"phone_number":"+628120000001","name":"Jos'),
        Buffer.from([0xe9]), // Latin-1 é
        Buffer.from('"}'),
      ]);
      const res = await post(body);
      assert.equal(res.statusCode, 400, res.body);
      assert.equal(res.json().error.code, "invalid_json");
      assert.match(res.json().error.message, /UTF-8/);
      const list = await h.inject({
        method: "GET",
        url: "/v1/contacts?phone=%2B628120000001",
        headers: t.auth,
      });
      assert.equal(list.json().data.length, 0);
    });

    test("a lone surrogate escape is 400 invalid_json, on both stores alike", async () => {
      for (const lone of ["\\ud800", "\\uDFFF", "x\\ud83dy"]) {
        const res = await post(`{"phone_number":"+628120000002","name":"a${lone}b"}`);
        assert.equal(res.statusCode, 400, res.body);
        assert.equal(res.json().error.code, "invalid_json");
      }
      const key = await post(`{"phone_number":"+628120000002","metadata":{"k\\udc00":"v"}}`);
      assert.equal(key.json().error.code, "invalid_json", "in a key too");
    });

    test("a paired surrogate escape is an emoji and is stored", async () => {
      const res = await post('{"phone_number":"+628120000003","name":"smile \\ud83d\\ude00"}');
      assert.equal(res.statusCode, 201, res.body);
      assert.equal(res.json().data.name, "smile 😀");
    });

    test("name length counts code points: 256 emoji accepted, 257 rejected, on every path", async () => {
      const ok = await post(JSON.stringify({ phone_number: "+628120000004", name: "😀".repeat(256) }));
      assert.equal(ok.statusCode, 201, ok.body);
      assert.equal([...ok.json().data.name].length, 256);
      const tooLong = await post(JSON.stringify({ phone_number: "+628120000005", name: "😀".repeat(257) }));
      assert.equal(tooLong.statusCode, 400);
      assert.equal(tooLong.json().error.param, "name");
      const patch = await h.inject({
        method: "PATCH",
        url: `/v1/contacts/${ok.json().data.id}`,
        headers: t.auth,
        payload: { name: "é".repeat(256) },
      });
      assert.equal(patch.statusCode, 200, patch.body);
    });
  });
}

describe("links never come from the request's Host", () => {
  for (const publicUrl of [undefined, "https://contacts.example.com/base/"]) {
    test(`PUBLIC_URL ${publicUrl ?? "unset"}`, async () => {
      const h = await createHarness("sqlite", publicUrl ? { PUBLIC_URL: publicUrl } : {});
      try {
        const t = await h.tenant();
        const account = await h.account(t.orgId);
        for (let i = 0; i < 3; i++) {
          await h.inject({
            method: "POST",
            url: `/v1/${account.phoneNumberId}/contacts`,
            headers: t.auth,
            payload: { phone_number: `+62812300000${i}` },
          });
        }
        const headers = {
          ...t.auth,
          host: "evil.example",
          "x-forwarded-host": "evil.example",
          "x-forwarded-proto": "https",
        };
        const cursor = await h.inject({
          method: "GET",
          url: "/platform/v1/whatsapp/contacts?limit=1",
          headers,
        });
        const offset = await h.inject({
          method: "GET",
          url: "/platform/v1/whatsapp/contacts?page=1&per_page=1",
          headers,
        });
        const next: string = cursor.json().paging.next;
        const link = String(offset.headers.link);
        assert.ok(!next.includes("evil") && !link.includes("evil"), `${next} ${link}`);
        if (publicUrl) {
          assert.ok(
            next.startsWith("https://contacts.example.com/base/platform/v1/whatsapp/contacts?"),
            next,
          );
          assert.ok(link.includes("<https://contacts.example.com/base/platform/v1/whatsapp/contacts?"), link);
        } else {
          assert.ok(next.startsWith("/platform/v1/whatsapp/contacts?"), next);
          assert.ok(link.includes("</platform/v1/whatsapp/contacts?"), link);
        }
      } finally {
        await h.close();
      }
    });
  }
});
