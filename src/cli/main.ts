import { createInterface } from "node:readline/promises";
import { parseArgs } from "node:util";
import { ConfigError, describeStore, loadConfig } from "../config.ts";
import { createAccount, deleteAccount, updateAccount } from "../domain/accounts.ts";
import { toIso, toIsoOrNull } from "../domain/clock.ts";
import {
  createApiKey,
  createOrganization,
  deleteOrganization,
  listApiKeysOf,
  requireOrganization,
  revokeApiKey,
} from "../domain/organizations.ts";
import { isApiError, notFound } from "../errors.ts";
import { startServer } from "../server.ts";
import {
  type AccountRow,
  findAccount,
  findAccountByPhoneNumberId,
  listAccounts,
  listAllAccounts,
} from "../store/repositories/accounts.ts";
import type { Erased } from "../store/repositories/erasure.ts";
import { listOrganizations } from "../store/repositories/organizations.ts";
import { createStore, type Store } from "../store/store.ts";
import { backupCommand } from "./backup.ts";
import { explainStartupError } from "./startup-errors.ts";
import { exportCommand, importCommand } from "./transfer.ts";
import { webhooksCommand } from "./webhooks.ts";

const USAGE = `Usage: phonebook <command> [options]   (every command takes --json)

  serve                                         run the HTTP server (what npm start runs)
  migrate                                       apply pending migrations and exit
  org create --name NAME                        create an organisation
  org list                                      list organisations
  key create --org ORG_ID [--label L] [--expires-at ISO]
                                                create an API key (printed once)
  org delete ORG_ID [--yes]                     erase an organisation and all its data (asks first)
  key list --org ORG_ID                         list an organisation's API keys
  key revoke KEY_ID                             revoke an API key
  account add --org ORG_ID --phone-number-id ID --phone-number E164 [--name N] [--status S]
              [--default-country CC]            connect a WhatsApp number; CC (ISO 3166-1 alpha-2, e.g. ID)
                                                reads local numbers (0812…) of its contacts
  account set PHONE_NUMBER_ID|ACCOUNT_ID [--default-country CC|none] [--name N] [--status S]
                                                change an account (none clears the default country)
  account list --org ORG_ID                     list an organisation's accounts
  account remove PHONE_NUMBER_ID|ACCOUNT_ID [--yes]
                                                erase an account and its contacts (asks first)
  import FILE [--account PHONE_NUMBER_ID] [--mode create|upsert] [--format csv|ndjson]
                                                import contacts from a file, with a progress bar
                                                (--account may be left out when there is one account)
  export [--account PHONE_NUMBER_ID] [--format csv|ndjson]
                                                write every contact of the account to stdout
  webhooks list --org ORG_ID                    list the organisation's webhook endpoints
  webhooks deliveries --org ORG_ID [--subscription WHS_ID] [--status S] [--limit N]
                                                recent deliveries, newest first
  webhooks replay DELIVERY_ID --org ORG_ID      send a delivery's event again
  webhooks replay --org ORG_ID --subscription WHS_ID --since ISO
                                                send every event since then again
  backup FILE                                   copy the embedded store to FILE while it runs

Configuration comes from the environment (see README.md): DATA_DIR, DATABASE_URL, ...
A relative DATA_DIR is resolved against the Phonebook directory, not the current one.`;

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Progress line of long commands (stderr, terminals only); optional. */
  progress?: (line: string) => void;
  /** Raw stdout with backpressure (export); optional. */
  write?: (chunk: string) => Promise<void>;
  /**
   * Asks the operator a question and returns the answer; undefined when
   * nobody can answer (stdin is not a terminal). Defaults to the terminal.
   */
  ask?: (question: string) => Promise<string | undefined>;
}

async function askTerminal(question: string): Promise<string | undefined> {
  if (!process.stdin.isTTY) return undefined;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return await rl.question(question);
  } finally {
    rl.close();
  }
}

function erasedLine(erased: Erased): string {
  return Object.entries(erased)
    .filter(([, n]) => n > 0)
    .map(([kind, n]) => `${n} ${kind.replaceAll("_", " ")}`)
    .join(", ");
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
  let config: ReturnType<typeof loadConfig> | undefined;
  try {
    config = loadConfig(env);
    if (command === "serve") {
      await startServer(config, { print: io.out, json });
      return -1; // keeps running until a signal
    }
    // Which store a command works on, so that a surprising DATA_DIR is noticed (stderr: stdout may be data).
    if (!json) io.err(`Store: ${describeStore(config)}`);
    if (command === "backup") {
      if (!sub) throw new UsageError("backup needs a FILE.");
      return await backupCommand(config, sub, { out: print });
    }
    store = createStore(config);
    await store.migrate();
    const db = store.db;
    const need = (name: keyof typeof values): string => {
      const value = values[name];
      if (typeof value !== "string" || value === "") throw new UsageError(`--${name} is required.`);
      return value;
    };
    if (command === "webhooks") {
      return await webhooksCommand(
        store,
        {
          sub,
          arg,
          org: need("org"),
          subscription: values.subscription,
          status: values.status,
          since: values.since,
          limit: values.limit,
        },
        print,
      );
    }
    const confirm = async (what: string, typed: string) => {
      if (values.yes) return;
      const answer = await (io.ask ?? askTerminal)(`${what}\nType ${typed} to confirm: `);
      if (answer === undefined) throw new UsageError(`${what}\nRefusing without confirmation: pass --yes.`);
      if (answer.trim() !== typed) throw new UsageError("Not confirmed; nothing was erased.");
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
      case "org delete": {
        if (!arg) throw new UsageError("org delete needs an ORG_ID.");
        const org = await requireOrganization(db, arg);
        await confirm(
          `This erases organisation ${org.id} (${org.name}) and all its data: API keys, accounts, contacts, labels, customers, imports.`,
          org.id,
        );
        const erased = await store.transaction((tx) => deleteOrganization(tx, org.id));
        print(`Deleted organization ${org.id}; erased ${erasedLine(erased) || "nothing else"}.`, {
          id: org.id,
          object: "organization",
          deleted: true,
          erased,
        });
        return 0;
      }
      case "key list": {
        const rows = await listApiKeysOf(db, need("org"), { limit: 1000 });
        const state = (k: (typeof rows)[number]) =>
          k.revoked_at !== null
            ? "revoked"
            : k.expires_at !== null && k.expires_at <= Date.now()
              ? "expired"
              : "active";
        print(
          rows
            .map((k) =>
              `${k.id}  …${k.last4}  ${state(k)}  ${toIso(k.created_at)}  ${k.label ?? ""}`.trimEnd(),
            )
            .join("\n") || "No API keys.",
          rows.map((k) => ({
            id: k.id,
            object: "api_key",
            organization_id: k.organization_id,
            last4: k.last4,
            label: k.label,
            state: state(k),
            expires_at: toIsoOrNull(k.expires_at),
            revoked_at: toIsoOrNull(k.revoked_at),
            created_at: toIso(k.created_at),
          })),
        );
        return 0;
      }
      case "account remove": {
        if (!arg) throw new UsageError("account remove needs a PHONE_NUMBER_ID or an account id.");
        const account = arg.startsWith("wba_")
          ? await findAccount(db, arg)
          : await findAccountByPhoneNumberId(db, arg);
        if (!account) throw notFound("account", "PHONE_NUMBER_ID");
        await confirm(
          `This erases account ${account.phone_number_id} (${account.phone_number}) with all its contacts and imports.`,
          account.phone_number_id,
        );
        const { erased } = await store.transaction((tx) => deleteAccount(tx, account.id));
        print(`Removed account ${account.phone_number_id}; erased ${erasedLine(erased)}.`, {
          id: account.id,
          object: "account",
          phone_number_id: account.phone_number_id,
          deleted: true,
          erased,
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
        const account = await createAccount(db, need("org"), {
          phone_number_id: need("phone-number-id"),
          phone_number: need("phone-number"),
          name: values.name ?? null,
          status: statusArgument(values.status),
          default_country: values["default-country"],
        });
        print(
          `Connected ${account.phone_number} (phone_number_id ${account.phone_number_id}) as ${account.id}` +
            (account.default_country ? `; local numbers are read in ${account.default_country}` : ""),
          accountJson(account),
        );
        return 0;
      }
      case "account set": {
        if (!arg) throw new UsageError("account set needs a PHONE_NUMBER_ID or an account id.");
        const country = values["default-country"];
        if (country === undefined && values.name === undefined && values.status === undefined) {
          throw new UsageError("account set needs --default-country, --name or --status.");
        }
        const account = await updateAccount(db, arg, {
          name: values.name,
          status: statusArgument(values.status),
          default_country:
            country === undefined ? undefined : country.toLowerCase() === "none" ? null : country,
        });
        print(
          `Account ${account.phone_number_id} (${account.phone_number}): ${account.status}, ` +
            `default country ${account.default_country ?? "none (international numbers only)"}` +
            (account.name ? `, name ${account.name}` : ""),
          accountJson(account),
        );
        return 0;
      }
      case "import": {
        if (!sub) throw new UsageError("import needs a FILE.");
        return await importCommand(
          store,
          {
            file: sub,
            account: await accountArgument(db, values.account, values.org, io.err, json),
            mode: values.mode,
            format: values.format,
            json,
          },
          { out: io.out, progress: io.progress ?? terminalProgress, write: io.write ?? writeStdout },
        );
      }
      case "export": {
        return await exportCommand(
          store,
          {
            account: await accountArgument(db, values.account, values.org, io.err, json),
            format: values.format,
            json,
          },
          { out: io.out, progress: io.progress ?? terminalProgress, write: io.write ?? writeStdout },
        );
      }
      case "account list": {
        const rows = await listAccounts(db, need("org"));
        print(
          rows
            .map(
              (a) =>
                `${a.id}  ${a.phone_number_id}  ${a.phone_number}  ${a.status}  ${a.default_country ?? "--"}  ${a.name ?? ""}`,
            )
            .join("\n") || "No accounts.",
          rows.map(accountJson),
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
    const startup = config ? explainStartupError(error, config) : undefined;
    if (startup) {
      io.err(json ? JSON.stringify({ error: startup }) : `Error: ${startup.message}`);
      return 1;
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

const STATUSES = ["connected", "disconnected", "onboarding"] as const;

function statusArgument(value: string | undefined): (typeof STATUSES)[number] | undefined {
  if (value === undefined) return undefined;
  const status = STATUSES.find((s) => s === value);
  if (!status) throw new UsageError(`--status must be one of ${STATUSES.join(", ")}.`);
  return status;
}

function accountJson(account: AccountRow) {
  return {
    id: account.id,
    object: "account",
    organization_id: account.organization_id,
    phone_number_id: account.phone_number_id,
    phone_number: account.phone_number,
    name: account.name,
    status: account.status,
    default_country: account.default_country,
    created_at: toIso(account.created_at),
    updated_at: toIso(account.updated_at),
  };
}

/**
 * `--account` of import and export: the phone_number_id given, or, when none
 * is, the only account there is (of `--org`, if given). Several → a usage
 * error listing them.
 */
async function accountArgument(
  db: Store["db"],
  given: string | undefined,
  org: string | undefined,
  err: (line: string) => void,
  json: boolean,
): Promise<string> {
  if (given) return given;
  const accounts = org ? await listAccounts(db, org) : await listAllAccounts(db, 11);
  if (accounts.length === 1) {
    if (!json) err(`Account: ${accounts[0]!.phone_number_id} (${accounts[0]!.phone_number}), the only one`);
    return accounts[0]!.phone_number_id;
  }
  if (accounts.length === 0) {
    throw new UsageError(
      org
        ? `Organisation ${org} has no account: add one with phonebook account add.`
        : "There is no account yet: add one with phonebook account add.",
    );
  }
  const listed = accounts
    .slice(0, 10)
    .map((a) => `  ${a.phone_number_id}  ${a.phone_number}  ${a.name ?? ""}`.trimEnd())
    .join("\n");
  throw new UsageError(
    `--account is required: there are several accounts${org ? "" : " (or pass --org)"}:\n${listed}`,
  );
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      json: { type: "boolean" },
      yes: { type: "boolean", short: "y" },
      help: { type: "boolean", short: "h" },
      name: { type: "string" },
      org: { type: "string" },
      label: { type: "string" },
      "expires-at": { type: "string" },
      "phone-number-id": { type: "string" },
      "phone-number": { type: "string" },
      "default-country": { type: "string" },
      status: { type: "string" },
      account: { type: "string" },
      mode: { type: "string" },
      format: { type: "string" },
      subscription: { type: "string" },
      since: { type: "string" },
      limit: { type: "string" },
    },
  });
}

const isMain = process.argv[1] && /(?:main\.[jt]s|phonebook(?:\.js)?)$/.test(process.argv[1]);
if (isMain) {
  // A reader that stops early (`phonebook export | head`) closes the pipe: the
  // failed write ends the export quietly (transfer.ts); this keeps the stream's
  // own "error" event from crashing the process meanwhile.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error;
  });
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
