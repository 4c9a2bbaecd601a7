import { join } from "node:path";
import type { Config } from "../config.ts";

/**
 * One line for a failure to start that the operator can fix (the database
 * cannot be reached or refuses us, the port is taken, the data directory
 * cannot be written), naming the variable and the fix. Undefined for anything
 * else, which is a bug and keeps its stack trace.
 */
export function explainStartupError(
  error: unknown,
  config: Config,
): { code: string; message: string } | undefined {
  const e = error as { code?: unknown; syscall?: unknown; message?: unknown; errors?: unknown };
  const code = typeof e?.code === "string" ? e.code : undefined;
  const message = typeof e?.message === "string" ? e.message : "";
  if (e?.syscall === "listen") {
    const where = `${config.host}:${config.port}`;
    if (code === "EADDRINUSE") {
      return {
        code: "port_in_use",
        message: `PORT ${config.port} is already in use on ${config.host}: stop the process listening on ${where}, or set PORT to a free port (PORT=0 picks one).`,
      };
    }
    if (code === "EACCES") {
      return {
        code: "port_not_allowed",
        message: `PORT ${config.port} needs privileges this process lacks: set PORT to 1024 or above (and put a proxy on port ${config.port}).`,
      };
    }
    if (code === "EADDRNOTAVAIL") {
      return {
        code: "host_not_available",
        message: `HOST ${config.host} is not an address of this machine: set HOST to one of its addresses (127.0.0.1, or 0.0.0.0 for all).`,
      };
    }
    return undefined;
  }
  if (config.databaseUrl) return explainPostgres(code, message, e, config.databaseUrl);
  if (code === "SQLITE_CANTOPEN" || code === "EACCES" || code === "EROFS" || code === "ENOTDIR") {
    return {
      code: "data_dir_unusable",
      message: `DATA_DIR ${config.dataDir} cannot hold the store (${join(config.dataDir, "phonebook.db")}: ${message || code}): set DATA_DIR to a directory this user may write, or fix its permissions.`,
    };
  }
  return undefined;
}

function explainPostgres(
  code: string | undefined,
  message: string,
  error: { errors?: unknown },
  databaseUrl: string,
): { code: string; message: string } | undefined {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    return undefined;
  }
  const host = url.hostname || "localhost";
  const port = url.port || "5432";
  const role = decodeURIComponent(url.username) || "(the operating-system user)";
  const database = decodeURIComponent(url.pathname.slice(1)) || decodeURIComponent(url.username);
  const at = `${host}:${port}`;
  const shown = `postgres://${url.username ? `${url.username}@` : ""}${at}/${database}`;
  const unreachable = (why: string, fix: string) => ({
    code: "database_unreachable",
    message: `DATABASE_URL (${shown}): ${why}: ${fix} Unset DATABASE_URL to use the embedded store instead.`,
  });
  // Node reports a host with several addresses (localhost: ::1 and 127.0.0.1) as an AggregateError.
  const codes = [
    code,
    ...(Array.isArray(error.errors) ? error.errors.map((x) => (x as { code?: string }).code) : []),
  ];
  if (codes.includes("ECONNREFUSED")) {
    return unreachable(
      `nothing accepts connections at ${at} (connection refused)`,
      "start PostgreSQL there, or fix the host and port in DATABASE_URL.",
    );
  }
  if (codes.includes("ENOTFOUND") || codes.includes("EAI_AGAIN")) {
    return unreachable(`the host ${host} is not known`, "fix the host name in DATABASE_URL.");
  }
  if (codes.includes("ETIMEDOUT") || /timeout expired|connection timeout/i.test(message)) {
    return unreachable(
      `${at} did not answer within 5 s`,
      "check that PostgreSQL runs there and that no firewall drops the connection.",
    );
  }
  switch (code) {
    case "3D000":
      return unreachable(
        `PostgreSQL at ${at} has no database "${database}"`,
        `create it (createdb -h ${host} -p ${port} -U ${url.username || "postgres"} ${database}), or name an existing database in DATABASE_URL.`,
      );
    case "28000":
      return unreachable(
        `PostgreSQL at ${at} refused the role ${role} (${message})`,
        `put an existing role in DATABASE_URL (postgres://ROLE@${at}/${database}), create this one (createuser -h ${host} -p ${port} -U postgres ${url.username || "ROLE"}), or allow it in pg_hba.conf.`,
      );
    case "28P01":
      return unreachable(
        `password authentication failed for the role ${role}`,
        "put the right password in DATABASE_URL (postgres://ROLE:PASSWORD@HOST:PORT/DATABASE; percent-encode special characters).",
      );
    case "42501":
      return unreachable(
        `the role ${role} may not set up the schema (${message})`,
        `make the role own the database (ALTER DATABASE ${database} OWNER TO ${url.username || "ROLE"}), or run the migrations once as the owner (phonebook migrate).`,
      );
    case "53300":
      return unreachable(
        `PostgreSQL at ${at} has no connection slot left (${message})`,
        "raise max_connections, lower the number of processes, or put PgBouncer in front (docs/deploying.md).",
      );
    default:
      if (/unsupported startup parameter/i.test(message)) {
        return unreachable(
          `the pooler at ${at} refused a startup parameter (${message})`,
          "add it to ignore_startup_parameters in pgbouncer.ini (docs/deploying.md).",
        );
      }
      return undefined;
  }
}
