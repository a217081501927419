/**
 * Kernel errors, parsed once. The `netlink` package rejects with plain
 * `Error("Request rejected: EEXIST")` (`checkError` in its netlink.js) or
 * `Error("Timeout has been reached")`; we turn that into a typed `KernelError`
 * and then into the `TsoverlayError` the core understands.
 */
import { errorText, isTsoverlayError, TsoverlayError } from '../../errors.js';

export class KernelError extends Error {
  override readonly name = 'KernelError';
  constructor(
    /** Symbolic errno ('EEXIST', 'ENODEV', …), 'ETIMEDOUT' for our request timeout, 'EUNKNOWN' if unparseable. */
    readonly errno: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const REJECTED = /^Request rejected: (\S+)$/;

export const toKernelError = (e: unknown): KernelError => {
  if (e instanceof KernelError) return e;
  const text = errorText(e);
  const m = REJECTED.exec(text);
  if (m?.[1]) return new KernelError(m[1], text, { cause: e });
  if (text === 'Timeout has been reached') return new KernelError('ETIMEDOUT', text, { cause: e });
  // Socket-level failures from the native layer carry a Node-style `code`.
  const code = typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
  return new KernelError(code ?? 'EUNKNOWN', text, { cause: e });
};

/** Errnos meaning "something else already holds this" rather than "broken". */
const CONFLICTS = new Set(['EEXIST', 'EBUSY', 'EADDRINUSE', 'ENOTEMPTY']);

/**
 * `TsoverlayError` for a failed kernel operation, message `<operation> <device>: <errno>`,
 * e.g. `create vxlan tsvx-00002a: EEXIST`. `detail` is appended in parentheses.
 */
export const kernelFailure = (operation: string, device: string, e: unknown, detail?: string): TsoverlayError => {
  const ke = toKernelError(e);
  const what = ke.errno === 'EUNKNOWN' ? ke.message : ke.errno;
  return new TsoverlayError(
    CONFLICTS.has(ke.errno) ? 'KERNEL_CONFLICT' : 'KERNEL_FAILURE',
    `${operation} ${device}: ${what}${detail ? ` (${detail})` : ''}`,
    { cause: ke },
  );
};

/** The errno behind a `kernelFailure`, if that is what `e` is. */
export const errnoOf = (e: unknown): string | undefined =>
  isTsoverlayError(e) && e.cause instanceof KernelError ? e.cause.errno : undefined;
