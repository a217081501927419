/**
 * The reconcile loop: converges the kernel to the store on start, whenever
 * something marks it dirty (a Docker call, a store watch) and periodically.
 * One pass at a time; triggers during a pass coalesce into one more pass.
 * Failed actions are retried with capped exponential backoff.
 */
import type { Logger } from 'pino';
import type { Dataplane, Forwarding, ObservedLink, Underlay } from '../dataplane/dataplane.js';
import type { Firewall } from '../dataplane/firewall.js';
import { errorText } from '../errors.js';
import type { ClusterState } from '../store/cluster-state.js';
import { type Desired, RESOLVER_RULE_PRIORITY, RESOLVER_TABLE, computeDesired } from './desired.js';
import { type Action, plan, planDelta, planForwarding, planResolver } from './plan.js';
import type { WatchSet } from '../cluster/watch-set.js';
import { dnsNamesDir, endpointsDir, networkPath } from '../store/paths.js';
import { SerialLoop } from '../util/serial-loop.js';

export interface ReconcilerDeps {
  state: ClusterState;
  dataplane: Dataplane;
  underlay: Underlay;
  node: string;
  vxlanPort: number;
  intervalMs: number;
  log: Logger;
  /** Store watches follow the networks this pass looked at. */
  watches?: WatchSet;
  /** Host firewall rule for bridged traffic, checked every `firewallCheckMs`. */
  firewall?: Firewall;
  firewallCheckMs?: number;
  /** The node resolver's address, if it runs. */
  dnsAddress?: string;
}

export interface PassResult {
  actions: number;
  failed: number;
}

const FORWARDING_KINDS = new Set<Action['kind']>(['addFdb', 'deleteFdb', 'addNeigh', 'deleteNeigh', 'addBridgeAddress', 'addTableRoute', 'deleteTableRoute']);

export class Reconciler {
  private readonly loop: SerialLoop<PassResult>;
  private firewallCheckedAt = -Infinity;
  /**
   * Forwarding entries are read back from the kernel only when they may
   * differ from what we last verified: when the
   * store's entries for that device changed, when its device was (re)made, and
   * in a full pass every `intervalMs`, which also repairs drift made by hand.
   * Otherwise a pass would dump every device for every change anywhere.
   */
  private readonly verified = new Map<string, string>();
  private fullPassAt = -Infinity;
  /**
   * What the last pass without failures made true. Between full passes a
   * pass plans from the difference to it (planDelta) instead of dumping every
   * link of the host, which at thousands of endpoints is most of a pass.
   */
  private applied: Desired | undefined;

  constructor(private readonly deps: ReconcilerDeps) {
    this.loop = new SerialLoop(() => this.pass(), { intervalMs: deps.intervalMs, failed: (r) => r.failed > 0 });
  }

  /** Run one pass now (awaited) and then keep the loop going. */
  async start(): Promise<PassResult> {
    return this.loop.start();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** Something changed: run a pass soon. */
  markDirty(): void {
    this.loop.trigger();
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

  async desired(): Promise<Desired> {
    const { state, underlay, vxlanPort, node } = this.deps;
    const paths = ['/nodes', '/networks'];
    // all networks' reads at once: the store pipelines them
    const networks = await Promise.all(
      (await state.listNetworks()).map(async (net) => {
        // Endpoints matter only for networks this node has.
        const here = Object.values(net.aliases).includes(node);
        paths.push(networkPath(net.id));
        if (here) paths.push(endpointsDir(net.id), dnsNamesDir(net.id));
        return { net, endpoints: here ? await state.listEndpoints(net.id) : [] };
      }),
    );
    this.deps.watches?.sync(paths);
    const dnsAddress = this.deps.dnsAddress;
    return computeDesired({ networks, nodes: await state.listNodes(), me: node, underlay, vxlanPort, ...(dnsAddress ? { dnsAddress } : {}) });
  }

  private async pass(): Promise<PassResult> {
    const log = this.deps.log;
    let desired: Desired;
    let actions: Action[];
    let observed: ObservedLink[] | undefined;
    // 0.9: the periodic pass comes every intervalMs; it must count as full
    const full = this.applied === undefined || Date.now() - this.fullPassAt >= this.deps.intervalMs * 0.9;
    // how long each phase took, for the log: kernel and store reads, links, entries, firewall, resolver
    const ms: Record<string, number> = {};
    let lap = performance.now();
    const phase = (name: string): void => {
      const now = performance.now();
      ms[name] = Math.round(now - lap);
      lap = now;
    };
    const previous = this.applied;
    this.applied = undefined; // set again only if this pass succeeds
    try {
      if (full || !previous) {
        // Observed first, desired second: a device created by a Docker call
        // between the two reads is then already in the desired state, never
        // mistaken for an orphan.
        observed = await this.deps.dataplane.listOwnedLinks();
        phase('kernel');
        desired = await this.desired();
        actions = plan(desired, observed);
      } else {
        desired = await this.desired();
        actions = planDelta(previous, desired);
      }
    } catch (e) {
      // Never act on a partial picture (e.g. the store is unreachable): the
      // kernel keeps what it has and traffic keeps flowing.
      log.warn({ err: e, error: errorText(e) }, 'reconcile could not read desired or observed state; kernel left as is');
      return { actions: 0, failed: 1 };
    }
    let done = 0;
    let failed = 0;
    const broken = new Set<string>();
    const remade = new Set<string>();
    const passStart = Date.now();
    /** VXLAN devices created in this pass: they have no forwarding entries to read back. */
    const fresh = new Set<string>();
    const run = async (a: Action): Promise<boolean> => {
      try {
        if (a.kind === 'ensureNetwork') remade.add(a.spec.vxlan);
        const created = await this.apply(a);
        if (created && a.kind === 'ensureNetwork') fresh.add(a.spec.vxlan);
        done++;
        const fields = { action: a.kind, reason: a.reason, ...('name' in a ? { ifname: a.name } : {}), ...('entry' in a ? { entry: a.entry } : {}) };
        if (FORWARDING_KINDS.has(a.kind)) log.debug(fields, 'forwarding entry programmed');
        else log.warn(fields, 'repaired drift');
        return true;
      } catch (e) {
        failed++;
        if (a.kind === 'ensureNetwork') broken.add(a.spec.vxlan);
        log.error({ action: a.kind, reason: a.reason, err: e, error: errorText(e) }, 'reconcile action failed');
        return false;
      }
    };
    // The firewall check runs iptables (a few processes, ~0.1-0.2 s): alongside
    // the kernel work, not before it; awaited before the resolver's routing.
    const firewall = this.deps.firewall;
    const firewallChecked =
      firewall && Date.now() - this.firewallCheckedAt >= (this.deps.firewallCheckMs ?? 5000)
        ? (async () => {
            try {
              const dns = this.deps.dnsAddress;
              await Promise.all([
                firewall.ensureBridgeForwarding(),
                dns && (async () => {
                  await firewall.ensureResolverInput(dns);
                  await this.deps.dataplane.ensureSourceRule(dns, RESOLVER_TABLE, RESOLVER_RULE_PRIORITY);
                })(),
              ]);
              this.firewallCheckedAt = Date.now();
            } catch (e) {
              failed++;
              log.error({ err: e, error: errorText(e) }, 'firewall rule check failed');
            }
          })()
        : undefined;
    phase('store');
    for (const a of actions) await run(a);
    phase('links');
    // Entries after devices: a recreated VXLAN device starts empty.
    for (const vxlan of this.verified.keys()) if (!desired.forwarding.has(vxlan)) this.verified.delete(vxlan);
    // A full pass reads every device's entries in two dumps for the whole
    // host (by the ifindex it observed), other passes each device on its own.
    // Then per device its removals in order and its additions in one batch
    // (the dataplane pipelines them); devices side by side.
    const writes: Array<Promise<void>> = [];
    const indexOf = new Map((observed ?? []).map((l) => [l.name, l.index]));
    let all: Promise<Map<number, Forwarding>> | undefined;
    const read = async (vxlan: string): Promise<Forwarding> => {
      const index = indexOf.get(vxlan);
      if (!full || index === undefined) return this.deps.dataplane.listForwarding(vxlan);
      all ??= this.deps.dataplane.listAllForwarding();
      return (await all).get(index) ?? { fdb: [], neigh: [] };
    };
    for (const [vxlan, want] of desired.forwarding) {
      if (broken.has(vxlan)) continue; // already counted; retried next pass
      const signature = JSON.stringify(want);
      if (!full && !remade.has(vxlan) && this.verified.get(vxlan) === signature) continue;
      this.verified.delete(vxlan);
      let have: Forwarding = { fdb: [], neigh: [] };
      if (!fresh.has(vxlan)) {
        try {
          have = await read(vxlan);
        } catch (e) {
          failed++;
          log.error({ ifname: vxlan, err: e }, 'reading forwarding entries failed');
          continue;
        }
      }
      const todo = planForwarding(vxlan, want, have);
      writes.push(
        (async () => {
          let ok = true;
          for (const a of todo) if (a.kind.startsWith('delete')) ok = (await run(a)) && ok;
          const fdb = todo.flatMap((a) => (a.kind === 'addFdb' ? [a.entry] : []));
          const neigh = todo.flatMap((a) => (a.kind === 'addNeigh' ? [a.entry] : []));
          const adds = fdb.length + neigh.length;
          if (adds > 0) {
            try {
              const failures = await this.deps.dataplane.addForwarding(vxlan, { fdb, neigh });
              done += adds - failures.length;
              failed += failures.length;
              for (const f of failures) {
                log.error({ action: f.kind === 'fdb' ? 'addFdb' : 'addNeigh', entry: f.entry, err: f.error, error: errorText(f.error) }, 'reconcile action failed');
              }
              if (adds > failures.length) log.debug({ ifname: vxlan, entries: adds - failures.length }, 'forwarding entries programmed');
              ok &&= failures.length === 0;
            } catch (e) {
              failed += adds;
              ok = false;
              log.error({ ifname: vxlan, entries: adds, err: e, error: errorText(e) }, 'adding forwarding entries failed');
            }
          }
          if (ok) this.verified.set(vxlan, signature);
        })(),
      );
    }
    await Promise.all(writes);
    phase('entries');
    if (failed === 0) {
      this.applied = desired;
      if (full) this.fullPassAt = passStart;
    }
    await firewallChecked;
    phase('firewall');
    const resolverChanged = JSON.stringify(previous?.resolver) !== JSON.stringify(desired.resolver);
    if (desired.resolver && (full || resolverChanged || remade.size > 0)) {
      try {
        // Links as read at the start (a bridge made in this pass has no
        // address yet either); a delta pass reads them now.
        observed ??= await this.deps.dataplane.listOwnedLinks();
        const routes = await this.deps.dataplane.listTableRoutes(RESOLVER_TABLE);
        for (const a of planResolver(desired.resolver, observed, routes)) await run(a);
      } catch (e) {
        failed++;
        log.error({ err: e, error: errorText(e) }, 'reading resolver routing failed');
      }
      phase('resolver');
    }
    if (done === 0 && failed === 0) (previous ? log.debug : log.info).call(log, { full, ms }, 'reconcile: kernel matches the store');
    else log.info({ actions: done + failed, failed, full, ms }, 'reconcile pass done');
    return { actions: done + failed, failed };
  }

  /** Apply one action; true only for an ensureNetwork that created the VXLAN device. */
  private async apply(a: Action): Promise<boolean> {
    const dp = this.deps.dataplane;
    switch (a.kind) {
      case 'ensureNetwork':
        return dp.ensureNetwork(a.spec);
      case 'ensureEndpoint':
        await dp.ensureEndpoint(a.spec);
        return false;
      case 'deleteLink':
        await dp.deleteLink(a.name);
        return false;
      case 'addFdb':
        await dp.addFdb(a.vxlan, a.entry);
        return false;
      case 'deleteFdb':
        await dp.deleteFdb(a.vxlan, a.entry);
        return false;
      case 'addNeigh':
        await dp.addNeigh(a.vxlan, a.entry);
        return false;
      case 'deleteNeigh':
        await dp.deleteNeigh(a.vxlan, a.entry);
        return false;
      case 'addBridgeAddress':
        await dp.ensureBridgeAddress(a.bridge, a.address);
        return false;
      case 'addTableRoute':
        await dp.ensureTableRoute(RESOLVER_TABLE, a.route);
        return false;
      case 'deleteTableRoute':
        await dp.deleteTableRoute(RESOLVER_TABLE, a.route);
        return false;
      default: {
        const never: never = a;
        throw new Error(`unknown action ${JSON.stringify(never)}`);
      }
    }
  }
}
