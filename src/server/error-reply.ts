/**
 * Errors go back to dockerd as HTTP status + {"Err": message}: 400 for a
 * request we cannot parse or validate, 500 for a refused or failed operation
 * (both interfaces read `Err` from non-200 replies). Unknown errors are logged
 * in full and answered with a generic message.
 */
import type { FastifyError } from 'fastify';
import { TsoverlayError } from '../errors.js';

export interface ErrorReply {
  status: number;
  body: { Err: string };
}

export const toErrorReply = (err: unknown, method: string): ErrorReply & { unexpected: boolean } => {
  if (err instanceof TsoverlayError) {
    const status = err.code === 'INVALID_REQUEST' ? 400 : 500;
    return { status, body: { Err: err.message }, unexpected: false };
  }
  const fe = err as Partial<FastifyError> | undefined;
  if (fe?.validation) {
    return { status: 400, body: { Err: `invalid ${method} request: ${fe.message ?? 'body does not match the schema'}` }, unexpected: false };
  }
  if (typeof fe?.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return { status: fe.statusCode, body: { Err: `invalid ${method} request: ${fe.message ?? 'bad request'}` }, unexpected: false };
  }
  return { status: 500, body: { Err: `${method} failed unexpectedly; see the tsoverlay log` }, unexpected: true };
};
