/**
 * The reconcile loop: converges the kernel to the store on start, whenever
 * something marks it dirty (a Docker call, a store change seen by cluster
 * replication) and periodically. One pass at a time; triggers during a pass
 * coalesce into one more pass. Failed actions are retried with capped
 * exponential backoff.
 *
 * Each trigger says what changed (src/cluster/store-change.ts). A change
 * scoped to some networks gets a pass over those alone (partial.ts); the
 * whole cluster, the start, a reconnect, a retry and the periodic timer get
 * a pass over everything, which stays the safety net.
 *
 * A pass is a row of steps over one PassState (pass-state.ts):
 *   observe + plan (observe.ts, or partial.ts) → devices (apply-action.ts) → forwarding
 *   entries (apply-forwarding.ts) → firewall (firewall-step.ts, started
 *   alongside the kernel work) → resolver routing (resolver-step.ts).
 * What lasts between passes lives here: the last applied state (delta
 * passes plan from it), when the last full pass ran, and which devices'
 * forwarding entries are verified.
 */
import type { Dataplane, ObservedLink, Underlay } from '../dataplane/dataplane.js';
import { parseOwnedName } from '../dataplane/names.js';
import type { Firewall } from '../dataplane/firewall.js';
import type { Participation } from '../cluster/local-endpoints.js';
import type { Log } from '../log.js';
import { type Metrics, type Programmed, noMetrics, secondsSince } from '../metrics/metrics.js';
import type { NetworkRecord } from '../model.js';
import type { ClusterState } from '../store/cluster-state.js';
import { SerialLoop } from '../util/serial-loop.js';
import { PendingChanges, type StoreChange, WHOLE_CLUSTER } from '../cluster/store-change.js';
import { applyDevices } from './apply-action.js';
import { applyForwarding } from './apply-forwarding.js';
import type { Desired } from './desired.js';
import { FirewallStep } from './firewall-step.js';
import { conflictKey } from './duplicates.js';
import { type DesiredSource, type Observation, type PeerSet, observe, readDesired } from './observe.js';
import { PartialPass } from './partial.js';
import { type PassState, newPassState, stopwatch } from './pass-state.js';
import { type Action, keptLinks } from './plan.js';
import { resolverStep } from './resolver-step.js';

export interface ReconcilerDeps {
  state: ClusterState;
  dataplane: Dataplane;
  underlay: Underlay;
  node: string;
  /** The networks this node takes part in (src/cluster/local-endpoints.ts): only theirs are endpoints read and entries programmed. */
  local: Participation;
  vxlanPort: number;
  intervalMs: number;
  log: Log;
  /** Told which networks each pass read (cluster replication watches what they make relevant); `scope`: a scoped pass's networks. */
  onNetworksRead?: (networks: readonly NetworkRecord[], scope?: ReadonlySet<string>) => void;
  /** Host firewall rule for bridged traffic, checked every `firewallCheckMs`. */
  firewall?: Firewall;
  firewallCheckMs?: number;
  /** The node resolver's address, if it runs. */
  dnsAddress?: string;
  /**
   * Asked before every pass: false while the cluster store is refused
   * (cluster/identity.ts), and the pass then changes nothing.
   */
  mayChange?: () => Promise<boolean>;
  /** Passes, their duration and failures, and what the last good pass programmed. */
  metrics?: Metrics;
  /** Told how each pass ended (readiness counts failures in a row: src/health/failure-streak.ts). */
  onPass?: (outcome: 'ok' | 'failed' | 'skipped') => void;
  /** Lost peers kept for a grace period (cluster/peer-grace.ts); without it only live nodes are programmed. */
  peers?: PeerSet;
}

export interface PassResult {
  actions: number;
  failed: number;
}

export class Reconciler {
  private readonly loop: SerialLoop<PassResult>;
  private readonly source: DesiredSource;
  private readonly firewall: FirewallStep | undefined;
  private readonly partial: PartialPass;
  /** Changes not looked at yet: the next pass's scope. */
  private readonly pending = new PendingChanges();
  /**
   * Devices whose forwarding entries the kernel holds as last written
   * (device → signature of the entries): read back only when that may have
   * changed (apply-forwarding.ts).
   */
  private readonly verified = new Map<string, string>();
  private fullPassAt = -Infinity;
  /** Devices kept without a network in the store, as last reported (reportKept). */
  private readonly kept = new Set<string>();
  /**
   * What the last pass without failures made true. Between full passes a
   * pass plans from the difference to it (planDelta) instead of dumping every
   * link of the host, which at thousands of endpoints is most of a pass.
   */
  private applied: Desired | undefined;
  /** Duplicate-IP/MAC conflicts as last reported (reportConflicts). */
  private readonly conflicts = new Set<string>();
  /** A pass when the next lost peer's grace ends. */
  private graceTimer: NodeJS.Timeout | undefined;
  /** Callers of `passOver` waiting for the next pass to end. */
  private waiting: Array<() => void> = [];

  constructor(private readonly deps: ReconcilerDeps) {
    const { state, underlay, node, local, vxlanPort, dnsAddress, onNetworksRead, firewall, dataplane, log, peers } = deps;
    this.source = {
      state, underlay, node, local, vxlanPort,
      ...(dnsAddress ? { dnsAddress } : {}), ...(onNetworksRead ? { onNetworksRead } : {}), ...(peers ? { peers } : {}),
    };
    this.partial = new PartialPass(this.source, log);
    this.firewall = firewall && new FirewallStep({ firewall, dataplane, log, everyMs: deps.firewallCheckMs ?? 5000, ...(dnsAddress ? { dnsAddress } : {}) });
    this.loop = new SerialLoop(() => this.measuredPass(), { intervalMs: deps.intervalMs, failed: (r) => r.failed > 0 });
  }

  /** Run one pass now (awaited) and then keep the loop going. */
  async start(): Promise<PassResult> {
    return this.loop.start();
  }

  stop(): Promise<void> {
    clearTimeout(this.graceTimer);
    return this.loop.stop();
  }

  /** Something changed: run a pass soon, over what the change concerns (default: everything). */
  markDirty(change: StoreChange = WHOLE_CLUSTER): void {
    this.pending.add(change);
    this.loop.trigger();
  }

  /**
   * Something changed, and the caller waits until a pass that takes the
   * change in has ended (whatever its outcome). It is the loop's own next
   * pass, not one more: a scoped change keeps a scoped pass.
   */
  passOver(change: StoreChange): Promise<void> {
    const ended = new Promise<void>((resolve) => this.waiting.push(resolve));
    this.markDirty(change);
    return ended;
  }

  /**
   * One pass now, after the one in flight (callers during a pass wait for it).
   * It is a full pass (kernel read back) if the last full pass is 0.9 × the
   * interval old or the last pass failed; otherwise a delta pass from what the
   * last pass made true.
   */
  async runOnce(): Promise<PassResult> {
    return this.loop.runOnce();
  }

  /** What the kernel should hold, from the store as it is now. */
  async desired(): Promise<Desired> {
    return readDesired(this.source);
  }

  /** A pass, reported to the metrics (a pass that throws counts as failed, and the loop sees the throw). */
  private async measuredPass(): Promise<PassResult> {
    const metrics = this.deps.metrics ?? noMetrics;
    const t0 = performance.now();
    const waiting = this.waiting; // a pass takes the changes marked so far: it ends their waits
    this.waiting = [];
    try {
      const r = await this.pass();
      const outcome = r.skipped ? 'skipped' : r.failed > 0 ? 'failed' : 'ok';
      metrics.reconcilePass(secondsSince(t0), outcome, r.failed);
      this.deps.onPass?.(outcome);
      return { actions: r.actions, failed: r.failed };
    } catch (e) {
      metrics.reconcilePass(secondsSince(t0), 'failed', 0);
      this.deps.onPass?.('failed');
      throw e;
    } finally {
      for (const resolve of waiting) resolve();
    }
  }

  private async pass(): Promise<PassResult & { skipped?: true }> {
    // Taken before the first await: a change marked while this pass waits is
    // left for the pass its trigger asks for. Taken later, this pass would
    // take it too and leave that next pass nothing pending, which reads as
    // the whole cluster (measured: a fifth of all passes under load).
    const change = this.pending.take();
    if (this.deps.mayChange && !(await this.deps.mayChange())) {
      this.pending.add(change); // still to be looked at, once the store is accepted again
      return { actions: 0, failed: 0, skipped: true };
    }
    // 0.9: the periodic pass comes every intervalMs; it must count as full
    const full = this.applied === undefined || Date.now() - this.fullPassAt >= this.deps.intervalMs * 0.9;
    const previous = this.applied;
    this.applied = undefined; // set again only if this pass succeeds
    // how long each phase took, for the log: kernel and store reads, links, entries, firewall, resolver
    const clock = stopwatch();
    const scoped = !full && previous && !change.whole ? await this.scopedRead(change.networks, previous) : undefined;
    const seen = scoped ?? (await observe(this.deps, this.source, { full, previous, lap: clock.lap }));
    if (!seen) return { actions: 0, failed: 1 };
    this.reportConflicts(seen.desired);
    this.armGraceTimer();
    if (seen.observed) await this.reportKept(seen.desired, seen.observed, seen.actions);
    const p = newPassState({ full, scope: seen.scope, previous, desired: seen.desired, observed: seen.observed, clock });
    const firewallChecked = this.firewall?.start(p);
    p.lap('store');
    await applyDevices(this.deps, p, seen.actions);
    p.lap('links');
    await applyForwarding(this.deps, p, this.verified);
    p.lap('entries');
    if (p.failed === 0) this.remember(p);
    await firewallChecked;
    p.lap('firewall');
    await resolverStep(this.deps, p);
    return this.report(p);
  }

  /** A pass over some networks alone (partial.ts); undefined: the pass reads everything instead. */
  private async scopedRead(keys: ReadonlySet<string>, previous: Desired): Promise<Observation | undefined> {
    const r = await this.partial.read(keys, previous);
    if (r.kind === 'widen') {
      this.deps.log.debug({ why: r.why }, 'scoped reconcile pass widened to the whole store');
      return undefined;
    }
    return { desired: r.desired, observed: undefined, actions: r.actions, scope: r.devices };
  }

  /**
   * Say once per device that it is kept although the store does not ask for
   * it (its network's record is missing or unreadable, and it was never
   * removed through Docker): absence is not deletion.
   */
  private async reportKept(desired: Desired, observed: readonly ObservedLink[], actions: readonly Action[]): Promise<void> {
    const now = new Set(keptLinks(desired, observed, actions)); // the pass's own plan, not a second one
    for (const ifname of now) {
      if (this.kept.has(ifname)) continue;
      const owned = parseOwnedName(ifname);
      const vni = owned?.vni;
      this.deps.log.warn(
        { ifname, ...(vni !== undefined ? { vni } : {}) },
        'device kept: the store does not ask for it, but its network was never removed through Docker (a missing, unreadable or newer record)',
      );
      // its VNI stays taken, so that no new network shares the kept device's wire
      if (owned?.kind === 'vxlan' && vni !== undefined) {
        const held = await this.deps.state.holdKeptVni(vni, this.deps.node).catch(() => false);
        if (held) this.deps.log.info({ ifname, vni }, 'VNI of a kept device held in the store: new networks take another');
      }
    }
    this.kept.clear();
    for (const n of now) this.kept.add(n);
  }

  /**
   * Say once (while it lasts) that two endpoint records claim one IP or MAC,
   * and which one is programmed (duplicates.ts: the newest, then the larger id).
   */
  private reportConflicts(desired: Desired): void {
    const now = new Set<string>();
    for (const c of desired.conflicts ?? []) {
      const key = conflictKey(c);
      now.add(key);
      if (this.conflicts.has(key)) continue;
      this.deps.log.warn(
        { network: c.network, endpoint: c.loser.id, owner: c.loser.node, shared: c.shared, programmed: c.winner.id, programmedNode: c.winner.node },
        `endpoint records claim the same ${c.shared}: the newer one (${c.winner.id.slice(0, 12)} on ${c.winner.node}) is programmed, this one is not`,
      );
    }
    this.conflicts.clear();
    for (const k of now) this.conflicts.add(k);
  }

  /** A lost peer's grace ends at a time of its own: a pass then removes its entries. */
  private armGraceTimer(): void {
    const due = this.deps.peers?.nextChangeInMs();
    clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
    if (due === undefined) return;
    this.graceTimer = setTimeout(() => this.markDirty(), due + 50);
    this.graceTimer.unref();
  }

  /** The pass made the kernel match: later passes plan from it. */
  private remember(p: PassState): void {
    this.applied = p.desired;
    if (p.full) this.fullPassAt = p.startedAt;
    const { desired } = p;
    this.deps.metrics?.setProgrammed(() => programmed(desired));
  }

  private report(p: PassState): PassResult {
    const { log } = this.deps;
    const { done, failed, full, ms } = p;
    // scoped: how many networks' devices a pass scoped to a store change looked at (absent: every network)
    const fields = { full, ...(p.scope ? { scoped: p.scope.size } : {}), ms };
    if (done === 0 && failed === 0) (p.previous ? log.debug : log.info).call(log, fields, 'reconcile: kernel matches the store');
    else log.info({ actions: done + failed, failed, ...fields }, 'reconcile pass done');
    return { actions: done + failed, failed };
  }
}

/** What a pass without failures made true in the kernel, counted. */
const programmed = (d: Desired): Programmed => {
  let fdb = 0;
  let neigh = 0;
  for (const f of d.forwarding.values()) {
    fdb += f.fdb.length;
    neigh += f.neigh.length;
  }
  // per network its VXLAN device and the bridge or host macvlan; a veth's host end per bridge-layout endpoint
  const links = d.networks.length * 2 + d.endpoints.filter((e) => e.layout === 'bridge').length;
  return { fdb, neigh, links };
};
