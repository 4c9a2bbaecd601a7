import { setTimeout as delay } from "node:timers/promises";

/** Polls `read` until `done` holds, with a generous deadline (never a fixed wait as synchronisation). */
export async function eventually<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  what: string,
): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value).slice(0, 2000)}`);
    await delay(25);
  }
}
