/**
 * The server side of `RemoteDataplane` (remote-dataplane.ts): run as a
 * program (not a test), it serves one NetlinkDataplane in this process's
 * namespace over stdin/stdout until stdin ends.
 */
import { createInterface } from 'node:readline';
import { NetlinkDataplane } from '../../../src/dataplane/netlink-dataplane.js';
import { REMOTE_METHODS, type RemoteCall, type RemoteReply, REPLY_MARK } from './remote-dataplane.js';

/** The server side: one NetlinkDataplane in this process's namespace, one call at a time. */
const serveDataplane = async (): Promise<void> => {
  const dp = new NetlinkDataplane({ requestTimeoutMs: 5000 });
  for await (const line of createInterface({ input: process.stdin })) {
    const call = JSON.parse(line) as RemoteCall;
    let reply: RemoteReply;
    try {
      if (!REMOTE_METHODS.includes(call.method)) throw new Error(`no method ${String(call.method)}`);
      const fn = dp[call.method] as (...args: unknown[]) => Promise<unknown>;
      reply = { id: call.id, ok: true, value: (await fn.apply(dp, call.args)) ?? null };
    } catch (e) {
      const code = typeof e === 'object' && e !== null && 'code' in e ? e.code : undefined;
      reply = { id: call.id, ok: false, code, message: e instanceof Error ? e.message : String(e) };
    }
    process.stdout.write(`${REPLY_MARK}${JSON.stringify(reply)}\n`);
  }
  await dp.close();
};


await serveDataplane();
