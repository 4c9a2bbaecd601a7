import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "../config.ts";
import { createAccount } from "../domain/accounts.ts";
import { toIso } from "../domain/clock.ts";
import { createApiKey, createOrganization, revokeApiKey } from "../domain/organizations.ts";
import { isApiError } from "../errors.ts";
import { startServer } from "../server.ts";
import { listAccounts } from "../store/repositories/accounts.ts";
import { listOrganizations } from "../store/repositories/organizations.ts";
import { createStore, type Store } from "../store/store.ts";
import { exportCommand, importCommand } from "./transfer.ts";

const USAGE = `Usage: phonebook <command> [options]   (every command takes --json)

  serve                                         run the HTTP server (what npm start runs)
  migrate                                       apply pending migrations and exit
  org create --name NAME                        create an organisation
  org list                                      list organisations
  key create --org ORG_ID [--label L] [--expires-at ISO]
                                                create an API key (printed once)
  key revoke KEY_ID                             revoke an API key
  account add --org ORG_ID --phone-number-id ID --phone-number E164 [--name N] [--status S]
                                                connect a WhatsApp number
  account list --org ORG_ID                     list an organisation's accounts
  import FILE --account PHONE_NUMBER_ID [--mode create|upsert] [--format csv|ndjson]
                                                import contacts from a file, with a progress bar
  export --account PHONE_NUMBER_ID [--format csv|ndjson]
                                                write every contact of the account to stdout

Configuration comes from the environment (see README.md): DATA_DIR, DATABASE_URL, ...`;

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Progress line of long commands (stderr, terminals only); optional. */
  progress?: (line: string) => void;
  /** Raw stdout with backpressure (export); optional. */
  write?: (chunk: string) => Promise<void>;
}

function terminalProgress(line: string): void {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[2K${line}`);
}

function writeStdout(chunk: string): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(chunk, (error) => (error ? reject(error) : resolve()));
  });
}

class UsageError extends Error {}

/** Runs one CLI invocation; returns the exit code. Exported for tests. */
export async function runCli(
  argv: string[],
  env: Record<string, string | undefined> = process.env,
  io: CliIo = { out: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`) },
): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    io.err(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { positionals, values } = parsed;
  const json = values.json === true;
  const print = (human: string, machine: unknown) => io.out(json ? JSON.stringify(machine) : human);
  const [command, sub, arg] = positionals;
  if (values.help || command === undefined || command === "help") {
    io.out(USAGE);
    return command === undefined && !values.help ? 2 : 0;
  }

  let store: Store | undefined;
  try {
    const config = loadConfig(env);
    if (command === "serve") {
      await startServer(config, { print: io.out, json });
      return -1; // keeps running until a signal
    }
    store = createStore(config);
    await store.migrate();
    const db = store.db;
    const need = (name: keyof typeof values): string => {
      const value = values[name];
      if (typeof value !== "string" || value === "") throw new UsageError(`--${name} is required.`);
      return value;
    };
    switch (command === "import" || command === "export" ? command : `${command} ${sub ?? ""}`.trim()) {
      case "migrate": {
        print("Migrations are up to date.", { ok: true });
        return 0;
      }
      case "org create": {
        const org = await createOrganization(db, { name: need("name") });
        print(`Created organization ${org.id} (${org.name})`, {
          id: org.id,
          object: "organization",
          name: org.name,
          created_at: toIso(org.created_at),
        });
        return 0;
      }
      case "org list": {
        const rows = await listOrganizations(db, { limit: 1000 });
        print(
          rows.map((o) => `${o.id}  ${o.name}`).join("\n") || "No organizations.",
          rows.map((o) => ({ id: o.id, name: o.name, created_at: toIso(o.created_at) })),
        );
        return 0;
      }
      case "key create": {
        const expires = typeof values["expires-at"] === "string" ? Date.parse(values["expires-at"]) : null;
        if (expires !== null && Number.isNaN(expires))
          throw new UsageError("--expires-at must be an ISO 8601 instant.");
        const { row, key } = await createApiKey(db, need("org"), {
          label: values.label ?? null,
          expires_at: expires,
        });
        print(`Created API key ${row.id}. It is shown only this once:\n\n  ${key}\n`, {
          id: row.id,
          object: "api_key",
          key,
          last4: row.last4,
          label: row.label,
          expires_at: row.expires_at === null ? null : toIso(row.expires_at),
        });
        return 0;
      }
      case "key revoke": {
        if (!arg) throw new UsageError("key revoke needs a KEY_ID.");
        const row = await revokeApiKey(db, arg);
        print(`Revoked ${row.id}.`, { id: row.id, revoked: true });
        return 0;
      }
      case "account add": {
        const status = values.status as "connected" | "disconnected" | "onboarding" | undefined;
        const account = await createAccount(db, need("org"), {
          phone_number_id: need("phone-number-id"),
          phone_number: need("phone-number"),
          name: values.name ?? null,
          status,
        });
        print(
          `Connected ${account.phone_number} (phone_number_id ${account.phone_number_id}) as ${account.id}`,
          {
            id: account.id,
            object: "account",
            phone_number_id: account.phone_number_id,
            phone_number: account.phone_number,
            name: account.name,
            status: account.status,
          },
        );
        return 0;
      }
      case "import": {
        if (!sub) throw new UsageError("import needs a FILE.");
        return await importCommand(
          store,
          { file: sub, account: need("account"), mode: values.mode, format: values.format, json },
          { out: io.out, progress: io.progress ?? terminalProgress, write: io.write ?? writeStdout },
        );
      }
      case "export": {
        return await exportCommand(
          store,
          { account: need("account"), format: values.format, json },
          { out: io.out, progress: io.progress ?? terminalProgress, write: io.write ?? writeStdout },
        );
      }
      case "account list": {
        const rows = await listAccounts(db, need("org"));
        print(
          rows
            .map((a) => `${a.id}  ${a.phone_number_id}  ${a.phone_number}  ${a.status}  ${a.name ?? ""}`)
            .join("\n") || "No accounts.",
          rows,
        );
        return 0;
      }
      default:
        throw new UsageError(`Unknown command: ${positionals.join(" ")}`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`${error.message}\n\n${USAGE}`);
      return 2;
    }
    if (error instanceof ConfigError || isApiError(error)) {
      io.err(
        json
          ? JSON.stringify({
              error: {
                code: isApiError(error) ? error.code : "invalid_configuration",
                message: error.message,
              },
            })
          : `Error: ${error.message}`,
      );
      return 1;
    }
    throw error;
  } finally {
    await store?.close();
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
      name: { type: "string" },
      org: { type: "string" },
      label: { type: "string" },
      "expires-at": { type: "string" },
      "phone-number-id": { type: "string" },
      "phone-number": { type: "string" },
      status: { type: "string" },
      account: { type: "string" },
      mode: { type: "string" },
      format: { type: "string" },
    },
  });
}

const isMain = process.argv[1] && /(?:main\.[jt]s|phonebook(?:\.js)?)$/.test(process.argv[1]);
if (isMain) {
  runCli(process.argv.slice(2)).then(
    (code) => {
      if (code >= 0) process.exitCode = code;
    },
    (error) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
