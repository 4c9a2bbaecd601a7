import type { Migration, MigrationProvider } from "kysely";
import * as pg0001 from "./postgres/0001_foundation.ts";
import * as pg0002 from "./postgres/0002_idempotency.ts";
import * as pg0003 from "./postgres/0003_imports.ts";
import * as pg0004 from "./postgres/0004_customers.ts";
import * as pg0005 from "./postgres/0005_inbound_receipts.ts";
import * as pg0006 from "./postgres/0006_contact_counts.ts";
import * as pg0007 from "./postgres/0007_webhooks.ts";
import * as pg0008 from "./postgres/0008_merges.ts";
import * as pg0011 from "./postgres/0011_identity_history.ts";
import * as pg0012 from "./postgres/0012_default_country.ts";
import * as sqlite0001 from "./sqlite/0001_foundation.ts";
import * as sqlite0002 from "./sqlite/0002_idempotency.ts";
import * as sqlite0003 from "./sqlite/0003_imports.ts";
import * as sqlite0004 from "./sqlite/0004_customers.ts";
import * as sqlite0005 from "./sqlite/0005_inbound_receipts.ts";
import * as sqlite0006 from "./sqlite/0006_contact_counts.ts";
import * as sqlite0007 from "./sqlite/0007_webhooks.ts";
import * as sqlite0008 from "./sqlite/0008_merges.ts";
import * as sqlite0011 from "./sqlite/0011_identity_history.ts";
import * as sqlite0012 from "./sqlite/0012_default_country.ts";
import * as sqlite0013 from "./sqlite/0013_search_seq_blocks.ts";
import * as sqlite0014 from "./sqlite/0014_fts_update_when_changed.ts";

/**
 * Ordered, immutable migrations per dialect. Add a file per change, named
 * `NNNN_what.ts`, and list it here; never edit one that has shipped.
 */
const SQLITE: Record<string, Migration> = {
  "0001_foundation": sqlite0001,
  "0002_idempotency": sqlite0002,
  "0003_imports": sqlite0003,
  "0004_customers": sqlite0004,
  "0005_inbound_receipts": sqlite0005,
  "0006_contact_counts": sqlite0006,
  "0007_webhooks": sqlite0007,
  "0008_merges": sqlite0008,
  "0011_identity_history": sqlite0011,
  "0012_default_country": sqlite0012,
  "0013_search_seq_blocks": sqlite0013,
  "0014_fts_update_when_changed": sqlite0014,
};

const POSTGRES: Record<string, Migration> = {
  "0001_foundation": pg0001,
  "0002_idempotency": pg0002,
  "0003_imports": pg0003,
  "0004_customers": pg0004,
  "0005_inbound_receipts": pg0005,
  "0006_contact_counts": pg0006,
  "0007_webhooks": pg0007,
  "0008_merges": pg0008,
  "0011_identity_history": pg0011,
  "0012_default_country": pg0012,
};

export function migrationProvider(dialect: "sqlite" | "postgres"): MigrationProvider {
  const migrations = dialect === "sqlite" ? SQLITE : POSTGRES;
  return { getMigrations: async () => migrations };
}
