/**
 * One Docker plugin method: its path and the core call behind it. A method
 * with a body gets it decoded against its schema first; the handler's body
 * type is the schema's static type, so no handler reads an unchecked field.
 */
import { TsoverlayError } from '../errors.js';
import { type Schema, compileValidator } from '../util/schema.js';
import type { Core } from './core.js';

/** An answer for dockerd: serialized to JSON unchanged. */
export type Reply = object;

export interface Route {
  /** e.g. "NetworkDriver.CreateNetwork"; served at POST /<method>. */
  readonly method: string;
  /** Decode the request body (if the method has one) and run the core call. */
  handle(core: Core, body: unknown): Promise<Reply>;
}

const invalid = (method: string, why: string): TsoverlayError => new TsoverlayError('INVALID_REQUEST', `invalid ${method} request: ${why}`);

/** A method Docker calls with a JSON body matching `schema`. */
export const withBody = <T>(method: string, schema: Schema<T>, handle: (core: Core, body: T) => Promise<Reply>): Route => {
  const valid = compileValidator(schema);
  return {
    method,
    handle: async (core, body) => {
      if (body === null || body === undefined) {
        throw invalid(method, `${method} needs a JSON body (dockerd sends an empty body when it retries a timed-out call)`);
      }
      if (!valid(body)) throw invalid(method, valid.problems('body'));
      return handle(core, body);
    },
  };
};

/** A method Docker calls with an empty body (or one we do not read). */
export const withoutBody = (method: string, handle: (core: Core) => Promise<Reply>): Route => ({
  method,
  handle: async (core) => handle(core),
});
