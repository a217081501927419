/**
 * Composition root: config → logger → dataplane → store → membership → core →
 * reconcile + replication → server. `createApp` wires everything without
 * listening (tests use it with fakes); serve.ts runs it as the plugin, with
 * adapters.ts opening the real store and engine and lifecycle.ts handling
 * the socket, signals and the ordered stop.
 */
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { Collector } from './cluster/collector.js';
import { ClusterGuard } from './cluster/identity.js';
import { LocalEndpoints } from './cluster/local-endpoints.js';
import { registerNode, reregister } from './cluster/membership.js';
import { PeerGrace } from './cluster/peer-grace.js';
import { NamePublisher } from './cluster/name-publisher.js';
import { Replication } from './cluster/replication.js';
import { PendingChanges, type StoreChange } from './cluster/store-change.js';
import type { Replicator } from './cluster/replicator.js';
import type { Config } from './config.js';
import type { Dataplane, Underlay } from './dataplane/dataplane.js';
import { parseOwnedName } from './dataplane/names.js';
import { TsoverlayError } from './errors.js';
import { FailureStreak } from './health/failure-streak.js';
import { Readiness } from './health/readiness.js';
import { SessionHealth } from './health/session-health.js';
import type { Firewall } from './dataplane/firewall.js';
import { childWith } from './log.js';
import { NameIndex } from './dns/name-index.js';
import { NetworkDriver } from './driver/network-driver.js';
import type { DockerEngine } from './engine/engine.js';
import { Ipam } from './ipam/ipam.js';
import type { Metrics } from './metrics/metrics.js';
import type { NodeRecord } from './model.js';
import { Reconciler } from './reconcile/reconciler.js';
import { type Edge, buildEdge } from './server/build-server.js';
import { CachedKvStore } from './store/cached-kv-store.js';
import { ClusterState } from './store/cluster-state.js';
import { storeCachePolicy } from './store/paths.js';
import type { KvStore, Versioned } from './store/kv-store.js';
import { SerialLoop } from './util/serial-loop.js';
import { packageVersion } from './version.js';

/** Docker's overlay driver starts its VNIs here; we do the same. */
export const VNI_START = 4096;

export interface App {
  server: FastifyInstance;
  names: NameIndex;
  publisher: NamePublisher | undefined;
  driver: NetworkDriver;
  ipam: Ipam;
  reconciler: Reconciler;
  replicator: Replicator | undefined;
  replication: Replication;
  collector: Collector;
  state: ClusterState;
  underlay: Underlay;
  dataplane: Dataplane;
  node: string;
  /** Start the loops (first reconcile awaited); the server is not listening yet. */
  start(): Promise<void>;
  /** Stop the loops (kernel state stays). */
  stop(): Promise<void>;
  /** The cache's stable records, to save at a clean stop. */
  stableRecords(): Array<[string, Versioned]>;
  /** Why Docker calls are refused right now (the store stopped being this cluster's), or undefined. */
  refusal(): string | undefined;
}

export interface AppDeps {
  config: Config;
  log: Logger;
  kv: KvStore;
  dataplane: Dataplane;
  engine?: DockerEngine;
  firewall?: Firewall;
  /** Stable store records saved by the previous process (see readRecordSnapshot). */
  seed?: ReadonlyArray<[string, Versioned]>;
  /** The underlay, if already resolved (from config.advertise). */
  underlay?: Underlay;
  /**
   * An edge whose socket is already open (serve.ts): the app's server is its
   * server, and the caller fills its core once the app has started. Without
   * it, createApp builds an edge that reaches the core at once (tests).
   */
  edge?: Edge;
  /** What the loops report to (default: nothing); the edge and the adapters get theirs from serve.ts. */
  metrics?: Metrics;
}

/** What every part of the app is built with. */
interface Wiring {
  config: Config;
  log: Logger;
  state: ClusterState;
  dataplane: Dataplane;
  underlay: Underlay;
  node: string;
  /** The networks this node takes part in: kept by the driver, followed by every loop. */
  local: LocalEndpoints;
  /** Whether the store is still this cluster's: every loop that changes something asks first. */
  guard: ClusterGuard;
  metrics: Metrics | undefined;
  /** What readiness (src/health/) learns from the session and the reconcile passes. */
  health: { session: SessionHealth; reconcile: FailureStreak };
}

/** This node's membership record, and how to (re-)register it. */
const membership = ({ config, log, state, underlay, node }: Wiring): (() => Promise<void>) => {
  const nodeRecord: NodeRecord = {
    node,
    address: underlay.address,
    vxlanPort: config.vxlanPort,
    hostname: hostname(),
    version: packageVersion(),
    startedAt: new Date().toISOString(),
  };
  return () => registerNode(state, nodeRecord, log, { waitForOwnMs: config.zkSessionTimeoutMs + 2000 });
};

/** The loops that follow the cluster state: kernel reconcile, replication to the engine, name index. */
interface Loops {
  names: NameIndex;
  namesLoop: SerialLoop<boolean>;
  replication: Replication;
  reconciler: Reconciler;
  replicator: Replicator | undefined;
  publisher: NamePublisher | undefined;
  collector: Collector;
  /** Something in the cluster or on this node changed: every loop runs again soon (over what it concerns). */
  changed(change?: StoreChange): void;
}

const createLoops = (w: Wiring, engine: DockerEngine | undefined, firewall: Firewall | undefined): Loops => {
  const { config, log, state, dataplane, underlay, node, local, guard, metrics, health } = w;
  const mayChange = async (): Promise<boolean> => (await guard.check().catch(() => ({ ok: false }))).ok;
  const names = new NameIndex(state, node, local);
  const namesPending = new PendingChanges(); // the next refresh's scope: changed networks, or every one
  const namesLoop = new SerialLoop(
    () => {
      const change = namesPending.take();
      return names.refresh(change.whole ? undefined : change.networks).then(
        () => false,
        (e: unknown) => (log.debug({ err: e }, 'name index refresh failed'), true),
      );
    },
    { intervalMs: config.resyncIntervalMs, failed: (f) => f },
  );
  // store changes (watches, session, this node's Docker calls) → this node's loops: src/cluster/replication.ts
  const replication = new Replication({
    state, node, local, ...(engine ? { engine } : {}), intervalMs: config.resyncIntervalMs, log: log.child({ component: 'replicate' }), mayChange,
  });
  const replicator = replication.replicator;
  const changed = (change?: StoreChange): void => replication.changed(change);
  const reconciler = new Reconciler({
    state,
    dataplane,
    underlay,
    node,
    local,
    vxlanPort: config.vxlanPort,
    intervalMs: config.resyncIntervalMs,
    log: log.child({ component: 'reconcile' }),
    onNetworksRead: (networks, scope) => replication.networksRead(networks, scope),
    mayChange,
    onPass: (outcome) => health.reconcile.record(outcome),
    ...(metrics ? { metrics } : {}),
    peers: new PeerGrace({ graceMs: config.peerGraceMs, log: log.child({ component: 'reconcile' }) }),
    ...(firewall ? { firewall } : {}),
    ...(config.dnsAddress ? { dnsAddress: config.dnsAddress } : {}),
  });
  replication.follow((change) => reconciler.markDirty(change));
  if (config.dnsAddress) {
    replication.follow((change) => {
      namesPending.add(change);
      namesLoop.trigger();
    });
  }
  let publisher: NamePublisher | undefined;
  if (engine) {
    publisher = new NamePublisher({ state, engine, node, intervalMs: config.resyncIntervalMs, log: log.child({ component: 'names' }), mayChange });
  }
  const collector = new Collector({
    state,
    local,
    ...(engine ? { engine } : {}),
    node,
    collectAfterMs: config.collectAfterMs,
    orphanGraceMs: config.orphanGraceMs,
    // often enough that each delay is met within a quarter of it
    intervalMs: Math.max(1000, Math.min(config.resyncIntervalMs, config.collectAfterMs / 4, config.orphanGraceMs / 2)),
    log: log.child({ component: 'collect' }),
    mayChange,
  });
  return { names, namesLoop, replication, reconciler, replicator, publisher, collector, changed };
};

/** The core Docker's calls reach: the IPAM and the network driver. */
const createCore = (w: Wiring, changed: (change?: StoreChange) => void, reconciler: Reconciler): { ipam: Ipam; driver: NetworkDriver } => {
  const { config, log, state, dataplane, underlay, node, local } = w;
  const ipam = new Ipam({ state, config: { node, defaultPool: config.defaultPool, defaultPoolSize: config.defaultPoolSize } });
  const driver = new NetworkDriver({
    state,
    dataplane,
    underlay,
    config: {
      node,
      vxlanPort: config.vxlanPort,
      vniStart: VNI_START,
      defaultMode: config.defaultMode,
      ...(config.dnsAddress ? { dnsAddress: config.dnsAddress } : {}),
    },
    log: log.child({ component: 'driver' }),
    local,
    onChange: changed,
    programPeers: (change) => (changed(change), reconciler.passOver(change)),
  });
  return { ipam, driver };
};

/**
 * Store sessions: a new one (after an expiry) re-registers this node, if the
 * store is still this cluster's (a wiped ensemble is not), retried every
 * second until it lands or a newer session comes; any reconnect resyncs.
 */
const followSessions = (kv: KvStore, w: Wiring, register: () => Promise<void>, changed: () => void): (() => void) => {
  const { guard, log, health } = w;
  let session = 0; // bumped by every new session and by the stop: an older retry loop gives up
  const off = kv.onSession((e) => {
    // (the store's own component logs each session event)
    health.session.event(e);
    if (e === 'connected') {
      // A new session after an expiry: our ephemeral membership is gone.
      const mine = ++session;
      const attempt = async (): Promise<void> => {
        if (!(await guard.check()).ok) return; // a refused store: readiness says so (check 'store')
        await register();
        health.session.registered();
      };
      void reregister(attempt, { current: () => mine === session, log }).then((done) => done && changed());
    } else if (e === 'reconnected') changed();
  });
  return () => {
    session++;
    off();
  };
};

/**
 * Decide whether this store is this node's cluster (cluster/identity.ts)
 * before anything is written to it. A refused store ends the start with
 * STORE_REFUSED: serve.ts keeps the socket answering with the reason, changes
 * nothing, and tries again later.
 */
const acceptStore = async (kv: KvStore, dataplane: Dataplane, config: Config, log: Logger): Promise<ClusterGuard> => {
  const guard = new ClusterGuard({
    kv,
    file: config.clusterIdFile,
    adopt: config.adoptStore,
    kernelNetworks: async () => (await dataplane.listOwnedLinks()).filter((l) => parseOwnedName(l.name)?.kind === 'vxlan').length,
    storeHasNetworks: async () => (await kv.children('/networks')).length > 0,
    log: log.child({ component: 'identity' }),
  });
  const verdict = await guard.establish();
  if (!verdict.ok) throw new TsoverlayError('STORE_REFUSED', verdict.reason);
  return guard;
};

/** Why Docker calls are refused right now (a store that stopped being ours), or undefined. */
const refusalOf = (guard: ClusterGuard) => (): string | undefined => {
  const s = guard.state;
  return s.ok ? undefined : s.reason;
};

export const createApp = async (deps: AppDeps): Promise<App> => {
  const { config, kv, dataplane, engine, firewall } = deps;
  const underlay = deps.underlay ?? (await dataplane.resolveUnderlay(config.advertise));
  const node = config.nodeName ?? underlay.address;
  const log = childWith(deps.log, { node }); // serve.ts's logger names the node already
  log.info({ underlay: underlay.ifname, ip: underlay.address, mtu: underlay.mtu }, 'underlay resolved');
  const guard = await acceptStore(kv, dataplane, config, log);
  // every reconcile pass and name refresh reads the whole cluster: from memory, kept valid by watches
  const cache = new CachedKvStore(kv, storeCachePolicy);
  if (deps.seed?.length) log.info({ records: cache.seedStable(deps.seed) }, 'store records from the last run taken as a head start');
  const state = new ClusterState(cache, { log: log.child({ component: 'store' }) });
  await state.init();
  const health = { session: new SessionHealth(), reconcile: new FailureStreak({ what: 'reconcile passes' }) };
  const wiring: Wiring = { config, log, state, dataplane, underlay, node, local: new LocalEndpoints(node), guard, metrics: deps.metrics, health };

  const register = membership(wiring);
  await register();
  const loops = createLoops(wiring, engine, firewall);
  const unsubscribe = followSessions(kv, wiring, register, loops.changed);
  const { ipam, driver } = createCore(wiring, loops.changed, loops.reconciler);
  const edge = deps.edge ?? buildEdge(log.child({ component: 'server' }), deps.metrics, new Readiness({ log: log.child({ component: 'health' }) }));
  if (!deps.edge) edge.core.fill({ driver, ipam }, refusalOf(guard));
  edge.readiness.set('zookeeper', () => health.session.reason());
  edge.readiness.set('reconcile', () => health.reconcile.reason());
  const { names, namesLoop, replication, reconciler, replicator, publisher, collector } = loops;
  return {
    server: edge.server,
    names,
    publisher,
    driver,
    ipam,
    reconciler,
    replicator,
    replication,
    collector,
    state,
    underlay,
    dataplane,
    node,
    start: async () => {
      const t0 = performance.now();
      await driver.init();
      const t1 = performance.now();
      const first = await reconciler.start();
      log.info({ ...first, ms: { driver: Math.round(t1 - t0), reconcile: Math.round(performance.now() - t1) } }, 'initial reconcile done');
      if (config.dnsAddress) await namesLoop.start(); // the name index serves only the resolver
      replication.start();
      publisher?.start();
      collector.start();
    },
    stableRecords: () => cache.stableRecords(),
    refusal: refusalOf(guard),
    stop: async () => {
      unsubscribe();
      await replication.stop();
      await publisher?.stop();
      await collector.stop();
      await namesLoop.stop();
      await reconciler.stop();
    },
  };
};
