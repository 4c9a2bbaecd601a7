import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError, loadConfig } from "../src/config.ts";

test("HEAP_GROWTH_PERCENT: 50 by default, 0 leaves V8's rule, anything else is refused at start", () => {
  assert.equal(loadConfig({}).heapGrowthPercent, 50);
  assert.equal(loadConfig({ HEAP_GROWTH_PERCENT: "0" }).heapGrowthPercent, 0);
  assert.equal(loadConfig({ HEAP_GROWTH_PERCENT: "120" }).heapGrowthPercent, 120);
  for (const bad of ["-5", "1.5", "lots", "5000"]) {
    assert.throws(() => loadConfig({ HEAP_GROWTH_PERCENT: bad }), ConfigError, bad);
  }
});
