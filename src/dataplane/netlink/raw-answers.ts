/**
 * Answers read by hand, for link-message.ts and neigh-message.ts: a request
 * sent through the `netlink` package, whose answers come back as bytes, and
 * the walk over a message's attributes.
 */
import type { RtNetlinkSocket } from 'netlink';
import { NLA_TYPE_MASK } from './linux.js';
import type { TimedOptions } from './lane.js';

/**
 * Send a request (written by the package or by hand) and return the
 * payloads of its answers of type `answerType`, unparsed (the package's
 * parser would make objects of every attribute of every answer).
 */
export const rawAnswers = async (
  s: RtNetlinkSocket,
  type: number,
  body: Uint8Array[],
  answerType: number,
  o: TimedOptions & { flags?: number },
): Promise<Buffer[]> => {
  const [answers] = await s.socket.request(type, body, o);
  return answers.filter((m) => m.type === answerType).map((m) => m.data);
};

/**
 * Where each attribute of `b[start, end)` with a type below `from.length`
 * is: its payload is `b[from[type], to[type])`, from = 0 when absent (the
 * first of a type wins). Callers reuse their arrays (parsing is synchronous),
 * so a dump of thousands of messages makes no garbage for the walk.
 */
export const scanAttributes = (b: Buffer, start: number, end: number, from: Int32Array, to: Int32Array): void => {
  from.fill(0);
  for (let at = start; at + 4 <= end; ) {
    const len = b.readUInt16LE(at);
    if (len < 4 || at + len > end) break; // malformed: stop, keep what was read
    const type = b.readUInt16LE(at + 2) & NLA_TYPE_MASK;
    if (type < from.length && from[type] === 0) {
      from[type] = at + 4;
      to[type] = at + len;
    }
    at += (len + 3) & ~3;
  }
};
