/**
 * The reliability suite runs twice: small in `npm test` (fast feedback) and
 * large under `npm run test:reliability`, which sets PB_RELIABILITY=1.
 * Individual knobs can be overridden by environment (docs/reliability.md).
 */
export const RELIABILITY = process.env.PB_RELIABILITY === "1";

/** `fast` in `npm test`, `full` in reliability mode, or the integer in env `name` when set. */
export function scaled(name: string, fast: number, full: number): number {
  const raw = process.env[name];
  if (raw !== undefined && /^\d+$/.test(raw)) return Number(raw);
  return RELIABILITY ? full : fast;
}

/** A fixed seed (PB_FUZZ_SEED) replays a failing run; otherwise fast-check picks one and prints it. */
export function fuzzSeed(): number | undefined {
  const raw = process.env.PB_FUZZ_SEED;
  return raw !== undefined && /^-?\d+$/.test(raw) ? Number(raw) : undefined;
}

/** Rejects when `promise` takes longer than `ms`: "never a hang" as an assertion. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
