/**
 * Network replication across nodes, through each node's own Docker engine:
 * the engine side of src/cluster/replication.ts, which owns this loop and
 * marks it dirty on store changes that may have changed a network record
 * (created, named, aliased, removed), or the whole cluster; an endpoint's or
 * a name's change never does (this engine's network events do too, and so
 * does the periodic pass).
 *
 * - Names: the plugin API never carries a network's name, so the node whose
 *   engine created a network learns it from its engine and stores it.
 * - Create: a named cluster network that this node's engine lacks is created
 *   there (same name, driver, subnet, gateway, ip-range, options). The
 *   engine then calls this plugin, which joins the existing pool and network.
 * - Remove: a network a user removed on some node is removed from this
 *   engine too — once no container uses it here (until then it stays, and
 *   the log says why).
 */
import type { Log } from '../log.js';
import type { DockerEngine, EngineNetwork } from '../engine/engine.js';
import { EngineError } from '../engine/engine.js';
import { errorText } from '../errors.js';
import type { NetworkRecord } from '../model.js';
import type { ClusterState } from '../store/cluster-state.js';
import { SerialLoop } from '../util/serial-loop.js';

export interface ReplicatorDeps {
  state: ClusterState;
  engine: DockerEngine;
  node: string;
  intervalMs: number;
  log: Log;
  /**
   * Asked before every pass: false while the cluster store is refused
   * (cluster/identity.ts), and the pass then changes nothing.
   */
  mayChange?: () => Promise<boolean>;
}

export interface SyncResult {
  created: number;
  removed: number;
  named: number;
  failed: number;
}

export class Replicator {
  private readonly loop: SerialLoop<SyncResult>;
  private readonly abort = new AbortController();
  /** Networks we already said we keep, so the log says it once. */
  private readonly kept = new Set<string>();
  private readonly reported = new Set<string>();
  /** Networks whose copy here failed once (reported only when it fails again). */
  private readonly failedOnce = new Set<string>();

  constructor(private readonly deps: ReplicatorDeps) {
    this.loop = new SerialLoop(() => this.sync(), { intervalMs: deps.intervalMs, failed: (r) => r.failed > 0 });
  }

  start(): void {
    this.deps.engine.watchEvents(
      {
        onEvent: (e) => {
          if (e.type === 'network' && (e.action === 'create' || e.action === 'destroy' || e.action === 'disconnect')) this.loop.trigger();
        },
        onConnected: () => this.loop.trigger(),
      },
      this.abort.signal,
    );
    void this.loop.start().catch((e: unknown) => this.deps.log.error({ err: e }, 'replication failed'));
  }

  markDirty(): void {
    this.loop.trigger();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop.stop();
  }

  runOnce(): Promise<SyncResult> {
    return this.loop.runOnce();
  }

  private async sync(): Promise<SyncResult> {
    const { state, engine, node, log } = this.deps;
    const r: SyncResult = { created: 0, removed: 0, named: 0, failed: 0 };
    if (this.deps.mayChange && !(await this.deps.mayChange())) return r;
    let local: EngineNetwork[];
    let records: NetworkRecord[];
    try {
      local = await engine.listNetworks([]);
      records = await state.listNetworks();
    } catch (e) {
      log.debug({ err: e, error: errorText(e) }, 'replication skipped: engine or store unreachable');
      return { ...r, failed: 1 };
    }
    const byKey = new Map<string, NetworkRecord>(records.map((n) => [n.id, n]));
    const localByKey = new Map<string, EngineNetwork>();
    for (const ln of local) {
      const key = await state.resolveNetwork(ln.id).catch(() => undefined);
      if (key) localByKey.set(key, ln);
    }

    // 1. Names (and the driver name) of networks this engine created.
    for (const [key, ln] of localByKey) {
      const rec = byKey.get(key);
      if (!rec || rec.name) continue;
      try {
        await state.updateNetwork(key, (n) => (n.name ? undefined : { next: { ...n, name: ln.name, driver: ln.driver } }));
        r.named++;
        log.info({ network: key, name: ln.name }, 'network named');
      } catch (e) {
        r.failed++;
        log.warn({ err: e, network: key }, 'storing the network name failed');
      }
    }

    for (const rec of records) {
      const ln = localByKey.get(rec.id);
      // 2. Removed elsewhere: remove here once unused.
      if (rec.deleted && ln) {
        try {
          await engine.removeNetwork(ln.id);
          r.removed++;
          this.kept.delete(rec.id);
          log.info({ network: rec.id, name: ln.name }, 'network removed here because it was removed on another node');
        } catch (e) {
          if (e instanceof EngineError && (e.status === 403 || e.status === 409)) {
            if (!this.kept.has(rec.id)) {
              log.info({ network: rec.id, name: ln.name }, 'network was removed on another node; keeping it here until its containers leave');
              this.kept.add(rec.id);
            }
          } else {
            r.failed++;
            log.warn({ err: e, network: rec.id }, 'removing a network removed elsewhere failed');
          }
        }
        continue;
      }
      // 3. Missing here: create it through this engine.
      if (rec.deleted || ln || !rec.name || Object.values(rec.aliases).includes(node)) continue;
      try {
        const spec = await this.createSpec(rec);
        await engine.createNetwork(spec);
        r.created++;
        this.reported.delete(rec.id);
        this.failedOnce.delete(rec.id);
        log.info({ network: rec.id, name: rec.name, vni: rec.vni }, 'network replicated to this node');
      } catch (e) {
        // removed on another node while we copied it (its pool went first): nothing to report
        const now = await state.getNetwork(rec.id).catch(() => rec);
        if (!now || now.deleted) {
          log.debug({ err: e, network: rec.id, name: rec.name }, 'network removed elsewhere while it was being replicated here');
          continue;
        }
        r.failed++;
        if (!this.failedOnce.has(rec.id)) {
          // a race with a removal on another node looks the same at first: report it if the next pass fails too
          this.failedOnce.add(rec.id);
          log.debug({ err: e, network: rec.id, name: rec.name }, 'creating the network here failed; trying again');
        } else if (!this.reported.has(rec.id)) {
          this.reported.add(rec.id);
          log.error({ err: e, network: rec.id, name: rec.name }, `could not create network "${rec.name}" on this node: ${errorText(e)}`);
        }
      }
    }
    if (r.created + r.removed + r.named + r.failed > 0) log.debug({ ...r }, 'replication pass');
    return r;
  }

  private async createSpec(rec: NetworkRecord) {
    const subnets = [];
    for (const s of [...rec.ipv4, ...rec.ipv6]) {
      const pool = await this.deps.state.getPool(s.poolId);
      subnets.push({
        subnet: s.pool,
        ...(s.gateway ? { gateway: s.gateway.split('/')[0] ?? s.gateway } : {}),
        ...(pool?.subPool ? { ipRange: pool.subPool } : {}),
      });
    }
    const driver = rec.driver ?? 'tsoverlay';
    return {
      name: rec.name ?? rec.id,
      driver,
      ipamDriver: driver,
      subnets,
      options: rec.options,
      internal: rec.internal,
      ipv6: rec.ipv6.length > 0,
      ipv4: rec.ipv4.length > 0,
      labels: { 'io.tsoverlay.replicated-from': rec.createdBy },
    };
  }
}
