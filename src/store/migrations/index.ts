import type { Migration, MigrationProvider } from "kysely";
import * as pg0001 from "./postgres/0001_foundation.ts";
import * as pg0003 from "./postgres/0003_imports.ts";
import * as sqlite0001 from "./sqlite/0001_foundation.ts";
import * as sqlite0003 from "./sqlite/0003_imports.ts";

/**
 * Ordered, immutable migrations per dialect. Add a file per change, named
 * `NNNN_what.ts`, and list it here; never edit one that has shipped.
 */
const SQLITE: Record<string, Migration> = {
  "0001_foundation": sqlite0001,
  "0003_imports": sqlite0003,
};

const POSTGRES: Record<string, Migration> = {
  "0001_foundation": pg0001,
  "0003_imports": pg0003,
};

export function migrationProvider(dialect: "sqlite" | "postgres"): MigrationProvider {
  const migrations = dialect === "sqlite" ? SQLITE : POSTGRES;
  return { getMigrations: async () => migrations };
}
