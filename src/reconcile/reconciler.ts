/**
 * The reconcile loop: converges the kernel to the store on start, whenever
 * something marks it dirty (a Docker call, a store watch) and periodically.
 * One pass at a time; triggers during a pass coalesce into one more pass.
 * Failed actions are retried with capped exponential backoff.
 */
import type { Logger } from 'pino';
import type { Dataplane, EndpointDevices, NetworkDevices, Underlay } from '../dataplane/dataplane.js';
import { endpointDevices, networkDevices } from '../driver/network-driver.js';
import { errorText } from '../errors.js';
import type { ClusterState } from '../store/cluster-state.js';
import { type Action, type Desired, plan } from './plan.js';

export interface ReconcilerDeps {
  state: ClusterState;
  dataplane: Dataplane;
  underlay: Underlay;
  node: string;
  vxlanPort: number;
  intervalMs: number;
  log: Logger;
}

export interface PassResult {
  actions: number;
  failed: number;
}

const MAX_BACKOFF_MS = 30_000;

export class Reconciler {
  private running: Promise<PassResult> | undefined;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private stopped = false;

  constructor(private readonly deps: ReconcilerDeps) {}

  /** Run one pass now (awaited) and then keep the loop going. */
  async start(): Promise<PassResult> {
    const r = await this.runOnce();
    this.schedule(r.failed > 0);
    return r;
  }

  stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    return this.running ? this.running.then(() => undefined) : Promise.resolve();
  }

  /** Something changed: run a pass soon. */
  markDirty(): void {
    if (this.stopped) return;
    this.dirty = true;
    if (!this.running) this.kick(0);
  }

  /** One full pass; concurrent callers share the pass in flight. */
  async runOnce(): Promise<PassResult> {
    while (this.running) await this.running;
    this.dirty = false;
    this.running = this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  async desired(): Promise<Desired> {
    const { state, underlay, vxlanPort, node } = this.deps;
    const networks: NetworkDevices[] = [];
    const endpoints: EndpointDevices[] = [];
    for (const net of await state.listNetworks()) {
      networks.push(networkDevices(net, underlay, vxlanPort));
      for (const ep of await state.listEndpoints(net.id)) {
        if (ep.node === node) endpoints.push(endpointDevices(ep, net));
      }
    }
    return { networks, endpoints };
  }

  private async pass(): Promise<PassResult> {
    const log = this.deps.log;
    let actions: Action[];
    try {
      // Observed first, desired second: a device created by a Docker call
      // between the two reads is then already in the desired state, never
      // mistaken for an orphan.
      const observed = await this.deps.dataplane.listOwnedLinks();
      actions = plan(await this.desired(), observed);
    } catch (e) {
      log.error({ err: e }, 'reconcile could not read desired or observed state');
      return { actions: 0, failed: 1 };
    }
    let failed = 0;
    for (const a of actions) {
      try {
        await this.apply(a);
        log.warn({ action: a.kind, ifname: 'name' in a ? a.name : undefined, reason: a.reason }, 'repaired drift');
      } catch (e) {
        failed++;
        log.error({ action: a.kind, reason: a.reason, err: e, error: errorText(e) }, 'reconcile action failed');
      }
    }
    if (actions.length === 0) log.debug('reconcile: kernel matches the store');
    else log.info({ actions: actions.length, failed }, 'reconcile pass done');
    return { actions: actions.length, failed };
  }

  private async apply(a: Action): Promise<void> {
    switch (a.kind) {
      case 'ensureNetwork':
        return this.deps.dataplane.ensureNetwork(a.spec);
      case 'ensureEndpoint':
        return this.deps.dataplane.ensureEndpoint(a.spec);
      case 'deleteLink':
        await this.deps.dataplane.deleteLink(a.name);
        return;
      default: {
        const never: never = a;
        throw new Error(`unknown action ${JSON.stringify(never)}`);
      }
    }
  }

  private schedule(failed: boolean): void {
    if (this.stopped) return;
    this.failures = failed ? this.failures + 1 : 0;
    const delay = failed ? Math.min(1000 * 2 ** (this.failures - 1), MAX_BACKOFF_MS) : this.deps.intervalMs;
    this.kick(this.dirty ? 0 : delay);
  }

  private kick(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.runOnce().then((r) => this.schedule(r.failed > 0));
    }, delayMs);
    this.timer.unref();
  }
}
