/**
 * Node membership: each plugin registers itself as an ephemeral node, so its
 * peers see it alive (and drop its forwarding entries when it is gone). A
 * node name held by another live session is refused — unless it is our own
 * previous incarnation (same address), whose session expires shortly. On
 * every session, new or resumed, the record is made current (address, port,
 * version), so a node restarted with a new advertise address is found there.
 * After an expiry the node registers again as soon as a new session is up,
 * retried every second until it lands (reregister below). Once registered,
 * it removes its /gone/<node> record (when it was seen gone) if there is one.
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
  await holdMembership(state, rec, log, opts);
  await clearGone(state, rec.node, log);
};

/**
 * This node is live: it is no longer gone. A failure is not the
 * registration's: the collector removes the record when it sees the node
 * live.
 */
const clearGone = async (state: ClusterState, node: string, log: Log): Promise<void> => {
  try {
    if (await state.nodes.clearGone(node)) log.info({}, 'this node was recorded as gone: record removed');
  } catch (err) {
    log.warn({ err }, 'could not remove the record of this node being gone; the collector removes it');
  }
};

const holdMembership = async (
  state: ClusterState,
  rec: NodeRecord,
  log: Log,
  opts: { waitForOwnMs: number; pollMs?: number },
): Promise<void> => {
  const deadline = Date.now() + opts.waitForOwnMs;
  for (;;) {
    try {
      await state.registerNode(rec);
      log.info({ ip: rec.address, version: rec.version }, 'node registered');
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
        log.info({ ip: rec.address, was: holder.rec.address, version: rec.version }, 'node record rewritten for the resumed session');
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
    log.info({}, 'waiting for the previous session of this node to expire');
    await sleep(opts.pollMs ?? 250);
  }
};

/** How often a registration after a new session is tried again while it fails. */
export const REREGISTER_RETRY_MS = 1000;

/**
 * Run `attempt` (register this node in a new session) until it succeeds,
 * every `retryMs`, as long as `current()` says this session is still the one
 * to register in. The first failure is logged at warn, later ones at debug.
 * True once registered; false if given up for a newer session or a stop.
 */
export const reregister = async (
  attempt: () => Promise<void>,
  opts: { current: () => boolean; log: Log; retryMs?: number },
): Promise<boolean> => {
  for (let tries = 1; opts.current(); tries++) {
    try {
      await attempt();
      if (tries > 1) opts.log.info({ tries }, 'node registered again after retries');
      return true;
    } catch (err) {
      (tries === 1 ? opts.log.warn : opts.log.debug).call(opts.log, { err, tries }, 'registering this node in the new session failed; trying again');
      await sleep(opts.retryMs ?? REREGISTER_RETRY_MS);
    }
  }
  return false;
};
