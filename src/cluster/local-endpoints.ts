/**
 * Which cluster networks this node takes part in: those holding an endpoint
 * of its own. Only those cost it anything per endpoint event: it watches and
 * reads their endpoints and published names (replication.ts, the reconciler,
 * the name index) and programs their remote forwarding entries. A network
 * its engine merely has (every named network is replicated into every
 * engine) costs it one watch on the network's record, and its devices.
 * Docker's overlay was lazy the same way: a node learnt a network's peers
 * only once a container of its own joined it.
 *
 * Kept in memory, never read back from the store per event:
 * - `load`, once at start, scans every network's endpoint folder for
 *   endpoint records of this node (a restart, or records written by an
 *   earlier run). A network whose endpoints cannot be read then counts as
 *   taken part in: not knowing is never a reason to stop following it.
 * - afterwards only this node's own driver creates and deletes its
 *   endpoints (`add` before the record is written, `remove` after it is
 *   deleted), so the set follows every change without a read.
 * Too large a set only costs watches; too small would leave a container's
 * peers unprogrammed, which is why nothing removes a network here but the
 * deletion of its last endpoint through Docker.
 */
import { errorText } from '../errors.js';
import type { Log } from '../log.js';
import type { EndpointRecord } from '../model.js';
import type { ClusterState } from '../store/cluster-state.js';

/** Whether this node takes part in a network (by its store key). */
export interface Participation {
  takesPart(network: string): boolean;
}

export class LocalEndpoints implements Participation {
  /** Network key → this node's endpoint ids in it. */
  private readonly byNetwork = new Map<string, Set<string>>();
  /** Networks whose endpoints could not be read at the start scan: followed anyway. */
  private readonly unknown = new Set<string>();

  constructor(private readonly node: string) {}

  takesPart(network: string): boolean {
    return this.byNetwork.has(network) || this.unknown.has(network);
  }

  /** The networks taken part in, for tests and status. */
  networks(): string[] {
    return [...new Set([...this.byNetwork.keys(), ...this.unknown])].sort();
  }

  /** This node is about to store an endpoint in `network` (before the write: its first pass must read it). */
  add(network: string, endpointId: string): void {
    let ids = this.byNetwork.get(network);
    if (!ids) this.byNetwork.set(network, (ids = new Set()));
    ids.add(endpointId);
  }

  /** This node's endpoint left `network` through Docker (or its creation was rolled back). */
  remove(network: string, endpointId: string): void {
    const ids = this.byNetwork.get(network);
    if (!ids?.delete(endpointId) || ids.size > 0) return;
    this.byNetwork.delete(network);
  }

  /**
   * Scan the store once (at start): every network's endpoint folder (by
   * folder, not by network record: a network whose record cannot be read
   * now is still found, and followed once it can), for this node's
   * endpoints. Returns them (the driver learns their sandboxes from them).
   * A network whose list cannot be read is followed anyway (said once); a
   * failed list of folders fails the scan.
   */
  async load(state: ClusterState, log: Log): Promise<EndpointRecord[]> {
    const keys = await state.endpointNetworks();
    const own: EndpointRecord[] = [];
    // all networks' reads at once: the store pipelines them
    await Promise.all(
      keys.map(async (key) => {
        try {
          for (const ep of await state.listEndpoints(key)) {
            if (ep.node !== this.node) continue;
            own.push(ep);
            this.add(key, ep.id);
          }
        } catch (e) {
          this.unknown.add(key);
          log.warn({ network: key, err: e, error: errorText(e) }, 'endpoints of a network unreadable at start: this node follows it as if it took part');
        }
      }),
    );
    return own;
  }
}
