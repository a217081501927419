/**
 * Errors go back to dockerd with an HTTP status and {"Err": message}: 400 for
 * a request we cannot parse or validate, 500 for a refused or failed operation
 * (both interfaces read `Err` from non-200 replies). Unknown errors are logged
 * in full and answered with a generic message.
 */
import { TsoverlayError } from '../errors.js';

export interface ErrorReply {
  status: number;
  body: { Err: string };
}

/** The 4xx status Fastify put on a request it refused (unparsable JSON, schema failure …), if any. */
const clientErrorStatus = (err: unknown): number | undefined => {
  if (typeof err !== 'object' || err === null || !('statusCode' in err)) return undefined;
  const status = err.statusCode;
  return typeof status === 'number' && status >= 400 && status < 500 ? status : undefined;
};

export const toErrorReply = (err: unknown, method: string): ErrorReply & { unexpected: boolean } => {
  if (err instanceof TsoverlayError) {
    const status = err.code === 'INVALID_REQUEST' ? 400 : 500;
    return { status, body: { Err: err.message }, unexpected: false };
  }
  const status = clientErrorStatus(err);
  if (status !== undefined) {
    const why = err instanceof Error ? err.message : 'bad request';
    return { status, body: { Err: `invalid ${method} request: ${why}` }, unexpected: false };
  }
  return { status: 500, body: { Err: `${method} failed unexpectedly; see the tsoverlay log` }, unexpected: true };
};
