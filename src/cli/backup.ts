import { spawn } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import SqliteDatabase from "better-sqlite3";
import type { Config } from "../config.ts";
import { ApiError } from "../errors.ts";

/**
 * `phonebook backup FILE` (docs/deploying.md, "Backups").
 *
 * Embedded store: SQLite's online backup API copies the database page by page
 * into FILE while servers keep reading and writing it (a write during the copy
 * makes SQLite restart the step; the result is one consistent snapshot,
 * including what sits in the WAL). FILE is a complete store: point DATA_DIR at
 * a directory holding it as `phonebook.db` to restore.
 *
 * PostgreSQL: runs `pg_dump --format=custom` into FILE when pg_dump is on the
 * PATH (restore with pg_restore); without it, says so and exits 1.
 */
export async function backupCommand(
  config: Config,
  file: string,
  io: { out: (human: string, machine: unknown) => void },
): Promise<number> {
  const target = resolve(file);
  if (existsSync(target)) {
    throw new ApiError(
      "invalid_field_value",
      `${target} exists; name a new file (a backup never overwrites).`,
      {
        param: "FILE",
      },
    );
  }
  if (config.databaseUrl) return pgDump(config.databaseUrl, target, io);
  const source = join(config.dataDir, "phonebook.db");
  if (!existsSync(source)) {
    throw new ApiError(
      "resource_not_found",
      `There is no store at ${source}: set DATA_DIR to the directory of the store to back up.`,
      { param: "DATA_DIR" },
    );
  }
  const db = new SqliteDatabase(source, { fileMustExist: true });
  try {
    db.pragma("busy_timeout = 5000");
    const { totalPages } = await db.backup(target);
    const bytes = statSync(target).size;
    io.out(
      `Backed up ${source} to ${target} (${totalPages} pages, ${bytes.toLocaleString("en-US")} bytes).`,
      {
        ok: true,
        store: "sqlite",
        source,
        file: target,
        bytes,
      },
    );
    return 0;
  } finally {
    db.close();
  }
}

function pgDump(
  databaseUrl: string,
  target: string,
  io: { out: (human: string, machine: unknown) => void },
): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn("pg_dump", ["--format=custom", "--no-owner", `--file=${target}`, databaseUrl], {
      stdio: ["ignore", "inherit", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") {
        reject(
          new ApiError(
            "service_unavailable",
            'pg_dump is not on the PATH: install the PostgreSQL client tools (apt-get install postgresql-client, the same major version as the server), or run pg_dump --format=custom "$DATABASE_URL" > FILE where it is installed.',
          ),
        );
      } else reject(error);
    });
    child.once("exit", (code) => {
      if (code === 0) {
        const bytes = statSync(target).size;
        io.out(
          `Dumped the PostgreSQL database to ${target} with pg_dump --format=custom (${bytes.toLocaleString("en-US")} bytes); restore with pg_restore.`,
          {
            ok: true,
            store: "postgres",
            file: target,
            bytes,
          },
        );
        resolvePromise(0);
      } else {
        reject(
          new ApiError(
            "service_unavailable",
            `pg_dump failed (exit ${code}): ${stderr.trim().split("\n")[0] ?? ""}`,
          ),
        );
      }
    });
  });
}
