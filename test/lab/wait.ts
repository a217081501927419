// Polling with a deadline. Tests wait on conditions, never on fixed sleeps
// (style guide §12): waitFor keeps calling `probe` until it gives a value that
// satisfies `until` (default: truthy), and on timeout fails with the last value
// (or error) it saw, so a red test says what the world looked like.
import { setTimeout as delay } from 'node:timers/promises';
import { inspect } from 'node:util';

export interface WaitOptions<T> {
  /** What we are waiting for, for the error message. */
  what: string;
  timeoutMs?: number;
  intervalMs?: number;
  /** Accept the probed value; default: any truthy value. */
  until?: (value: T) => boolean;
  /** Render the last value for the error message. */
  describe?: (value: T) => string;
}

export class WaitTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WaitTimeoutError';
  }
}

/** Thrown by a probe to give up at once (e.g. the process we wait for has exited). */
export class StopWaiting extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StopWaiting';
  }
}

export async function waitFor<T>(probe: () => T | Promise<T>, opts: WaitOptions<T>): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const intervalMs = opts.intervalMs ?? 100;
  const until = opts.until ?? ((v: T) => Boolean(v));
  const deadline = Date.now() + timeoutMs;
  let seen = false;
  let last: T | undefined;
  let lastErr: unknown;
  let tries = 0;
  for (;;) {
    tries++;
    try {
      const v = await probe();
      seen = true;
      last = v;
      lastErr = undefined;
      if (until(v)) return v;
    } catch (e) {
      if (e instanceof StopWaiting) throw new WaitTimeoutError(`gave up waiting for ${opts.what}: ${e.message}`);
      lastErr = e;
    }
    if (Date.now() >= deadline) break;
    await delay(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
  let lastText: string;
  if (lastErr !== undefined) {
    lastText = `last error: ${lastErr instanceof Error ? lastErr.message : inspect(lastErr)}`;
  } else if (seen) {
    lastText = `last value: ${opts.describe ? opts.describe(last as T) : inspect(last, { depth: 4, breakLength: 120 })}`;
  } else {
    lastText = 'no value seen';
  }
  throw new WaitTimeoutError(`timed out after ${timeoutMs} ms (${tries} tries) waiting for ${opts.what}; ${lastText}`);
}

/** Run `fn` and say how long it took (for the figures a test reports). */
export async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = Date.now();
  const value = await fn();
  return { value, ms: Date.now() - start };
}
