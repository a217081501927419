/**
 * Node membership: each plugin registers itself as an ephemeral node, so its
 * peers see it alive (and drop its forwarding entries when it is gone). A
 * node name held by another live session is refused — unless it is our own
 * previous incarnation (same address), whose session expires shortly. On
 * every session, new or resumed, the record is made current (address, port,
 * version), so a node restarted with a new advertise address is found there.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Log } from '../log.js';
import { TsoverlayError } from '../errors.js';
import type { NodeRecord } from '../model.js';
import type { ClusterState } from '../store/cluster-state.js';
import { KvConflict } from '../store/kv-store.js';

export const registerNode = async (
  state: ClusterState,
  rec: NodeRecord,
  log: Log,
  opts: { waitForOwnMs: number; pollMs?: number },
): Promise<void> => {
  const deadline = Date.now() + opts.waitForOwnMs;
  for (;;) {
    try {
      await state.registerNode(rec);
      log.info({ node: rec.node, ip: rec.address }, 'node registered');
      return;
    } catch (e) {
      if (!(e instanceof KvConflict && e.reason === 'exists')) throw e;
    }
    const holder = await state.nodeHolder(rec.node);
    if (!holder) continue; // it just went away
    if (holder.mine) {
      // Our own session, resumed: the record may be the previous process's
      // (another advertise address or port, another version). Make it current.
      if (JSON.stringify(holder.rec) === JSON.stringify(rec)) return;
      if (await state.rewriteNode(rec, holder.version)) {
        log.info({ node: rec.node, ip: rec.address, was: holder.rec.address }, 'node record rewritten for the resumed session');
        return;
      }
      continue;
    }
    if (holder.rec.address !== rec.address || Date.now() > deadline) {
      throw new TsoverlayError(
        'STORE_CONFLICT',
        `node name "${rec.node}" is held by another live tsoverlay node (address ${holder.rec.address}, host ${holder.rec.hostname}); give this node a unique --node-name`,
      );
    }
    log.info({ node: rec.node }, 'waiting for the previous session of this node to expire');
    await sleep(opts.pollMs ?? 250);
  }
};
