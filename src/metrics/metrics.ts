/**
 * The metrics port: what the code reports, in its own words. Core modules
 * take a `Metrics` (default `noMetrics`) and never import prom-client; only
 * prom-metrics.ts turns these calls into Prometheus families, and only the
 * composition (serve.ts) makes one. Every method is cheap and never throws.
 */

/** How a reconcile pass ended: everything applied, some action failed, or skipped (store refused). */
export type PassOutcome = 'ok' | 'failed' | 'skipped';

/** The cluster store's session as the ZooKeeper client last told it. */
export type ZkState = 'connected' | 'disconnected' | 'expired';

/** What the node resolver did with one query (besides counting it). */
export type DnsOutcome = 'answered' | 'forwarded' | 'dropped' | 'formerr' | 'servfail' | 'notimp';

/** What this node's kernel holds after a pass without failures (counted from what the pass made true). */
export interface Programmed {
  /** Static FDB entries on the VXLAN devices (remote MACs and flood entries). */
  fdb: number;
  /** Permanent neighbour entries on the VXLAN devices. */
  neigh: number;
  /** Our devices in the host namespace: VXLAN, bridge or host macvlan, veth host ends. */
  links: number;
}

export interface Metrics {
  /** One reconcile pass: its duration, how it ended and how many of its actions failed. */
  reconcilePass(seconds: number, outcome: PassOutcome, failedActions: number): void;
  /**
   * What the last pass without failures made true, counted when the metrics
   * are read (counting walks every local endpoint: not once per pass).
   */
  setProgrammed(count: () => Programmed): void;
  zkState(state: ZkState): void;
  /** The session came back: the same one ('resumed') or a new one after an expiry ('new'). */
  zkReconnect(kind: 'resumed' | 'new'): void;
  /** One ZooKeeper request (`op`: get, children, commit, …) and whether it succeeded. */
  zkRequest(op: string, seconds: number, ok: boolean): void;
  /** One Docker plugin API call (`method`: e.g. NetworkDriver.Join) and its HTTP status. */
  dockerCall(method: string, seconds: number, status: number): void;
  dnsQuery(transport: 'udp' | 'tcp'): void;
  dnsOutcome(outcome: DnsOutcome): void;
  /** A failed Engine API call: `resource` is the path's first segment, `status` the HTTP status or 'none'. */
  engineError(resource: string, status: string): void;
}

/** Reports nothing: the default everywhere, and the whole story when no metrics address is set. */
export const noMetrics: Metrics = {
  reconcilePass() {},
  setProgrammed() {},
  zkState() {},
  zkReconnect() {},
  zkRequest() {},
  dockerCall() {},
  dnsQuery() {},
  dnsOutcome() {},
  engineError() {},
};

/** Seconds since `startMs` (a performance.now() reading). */
export const secondsSince = (startMs: number): number => (performance.now() - startMs) / 1000;
