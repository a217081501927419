/**
 * The one error type the core throws. `code` is a closed union so the Docker
 * edge can map it to a status; `message` is shown to users by dockerd, so it
 * must say what to do and must never carry secrets.
 */
export type ErrorCode =
  | 'INVALID_REQUEST'
  | 'INVALID_OPTION'
  | 'NOT_OURS'
  | 'NETWORK_NOT_FOUND'
  | 'NETWORK_IN_USE'
  | 'ENDPOINT_NOT_FOUND'
  | 'POOL_NOT_FOUND'
  | 'POOL_OVERLAP'
  | 'POOL_EXHAUSTED'
  | 'ADDRESS_IN_USE'
  | 'ADDRESS_OUT_OF_RANGE'
  | 'VNI_EXHAUSTED'
  | 'VNI_IN_USE'
  | 'STORE_UNAVAILABLE'
  | 'STORE_CONFLICT'
  | 'STORE_REFUSED'
  | 'BAD_RECORD'
  | 'KERNEL_CONFLICT'
  | 'KERNEL_FAILURE';

export class TsoverlayError extends Error {
  override readonly name = 'TsoverlayError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const isTsoverlayError = (e: unknown, code?: ErrorCode): e is TsoverlayError =>
  e instanceof TsoverlayError && (code === undefined || e.code === code);

/** Human text of any thrown value, for logs and aggregated messages. */
export const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));
