/**
 * Composition root: config → logger → dataplane → store → membership → core →
 * reconcile + replication → server. `createApp` wires everything without
 * listening (tests use it with fakes); `serve` runs the plugin until
 * SIGTERM/SIGINT.
 */
import { mkdir, readFile, unlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { registerNode } from './cluster/membership.js';
import { NamePublisher } from './cluster/name-publisher.js';
import { Replicator } from './cluster/replicator.js';
import { WatchSet } from './cluster/watch-set.js';
import type { Config } from './config.js';
import { TsoverlayError, isTsoverlayError } from './errors.js';
import type { Dataplane, Underlay } from './dataplane/dataplane.js';
import type { Firewall } from './dataplane/firewall.js';
import { IptablesFirewall } from './dataplane/iptables-firewall.js';
import { NameIndex } from './dns/name-index.js';
import { NetworkDriver } from './driver/network-driver.js';
import type { DockerEngine } from './engine/engine.js';
import { Ipam } from './ipam/ipam.js';
import type { NodeRecord } from './model.js';
import { Reconciler } from './reconcile/reconciler.js';
import { buildServer } from './server/build-server.js';
import { CachedKvStore } from './store/cached-kv-store.js';
import { ClusterState } from './store/cluster-state.js';
import { storeCachePolicy, watchKind } from './store/paths.js';
import { type KvStore, KvUnavailable, type Versioned } from './store/kv-store.js';
import { SerialLoop } from './util/serial-loop.js';

/** The socket opens after this even if the store is not connected yet. */
const OPEN_SOCKET_AFTER_MS = 5000;

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
  watches: WatchSet;
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
}

const packageVersion = async (): Promise<string> => {
  try {
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
};

export const createApp = async (deps: {
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
}): Promise<App> => {
  const { config, kv, dataplane, engine, firewall } = deps;
  const underlay = deps.underlay ?? (await dataplane.resolveUnderlay(config.advertise));
  const node = config.nodeName ?? underlay.address;
  const log = deps.log.child({ node });
  log.info({ underlay: underlay.ifname, ip: underlay.address, mtu: underlay.mtu, node }, 'underlay resolved');
  // every reconcile pass and name refresh reads the whole cluster: from memory, kept valid by watches
  const cache = new CachedKvStore(kv, storeCachePolicy);
  if (deps.seed?.length) log.info({ records: cache.seedStable(deps.seed) }, 'store records from the last run taken as a head start');
  const state = new ClusterState(cache);
  await state.init();

  const nodeRecord: NodeRecord = {
    node,
    address: underlay.address,
    vxlanPort: config.vxlanPort,
    hostname: hostname(),
    version: await packageVersion(),
    startedAt: new Date().toISOString(),
  };
  const register = () => registerNode(state, nodeRecord, log, { waitForOwnMs: config.zkSessionTimeoutMs + 2000 });
  await register();

  let replicator: Replicator | undefined;
  let reconciler: Reconciler | undefined;
  const names = new NameIndex(state, node);
  const namesLoop = new SerialLoop(
    () => names.refresh().then(() => false, (e: unknown) => (log.debug({ err: e }, 'name index refresh failed'), true)),
    { intervalMs: config.resyncIntervalMs, failed: (f) => f },
  );
  const changed = (): void => {
    reconciler?.markDirty();
    replicator?.markDirty();
    if (config.dnsAddress) namesLoop.trigger();
  };
  const watches = new WatchSet(state, changed);
  reconciler = new Reconciler({
    state,
    dataplane,
    underlay,
    node,
    vxlanPort: config.vxlanPort,
    intervalMs: config.resyncIntervalMs,
    log: log.child({ component: 'reconcile' }),
    watches,
    ...(firewall ? { firewall } : {}),
    ...(config.dnsAddress ? { dnsAddress: config.dnsAddress } : {}),
  });
  let publisher: NamePublisher | undefined;
  if (engine) {
    replicator = new Replicator({ state, engine, node, intervalMs: config.resyncIntervalMs, log: log.child({ component: 'replicate' }) });
    publisher = new NamePublisher({ state, engine, node, intervalMs: config.resyncIntervalMs, log: log.child({ component: 'names' }) });
  }
  const unsubscribe = kv.onSession((e) => {
    log.info({ session: e }, 'cluster store session');
    if (e === 'connected') {
      // A new session after an expiry: our ephemeral membership is gone.
      register().then(changed, (err: unknown) => log.error({ err }, 're-registering this node failed'));
    } else if (e === 'reconnected') changed();
  });
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
    onChange: changed,
  });
  const server = buildServer({ driver, ipam }, log.child({ component: 'server' }));
  const rec = reconciler;
  return {
    server,
    names,
    publisher,
    driver,
    ipam,
    reconciler: rec,
    replicator,
    watches,
    state,
    underlay,
    dataplane,
    node,
    start: async () => {
      const t0 = performance.now();
      await driver.init();
      const t1 = performance.now();
      const first = await rec.start();
      log.info({ ...first, ms: { driver: Math.round(t1 - t0), reconcile: Math.round(performance.now() - t1) } }, 'initial reconcile done');
      if (config.dnsAddress) await namesLoop.start(); // the name index serves only the resolver
      replicator?.start();
      publisher?.start();
    },
    stableRecords: () => cache.stableRecords(),
    stop: async () => {
      unsubscribe();
      watches.close();
      await publisher?.stop();
      await replicator?.stop();
      await namesLoop.stop();
      await rec.stop();
    },
  };
};

interface Adapters {
  kv: KvStore;
  dataplane: Dataplane;
  engine?: DockerEngine;
  /** How the store is let go at stop: ZooKeeper detaches (the next process resumes the session). */
  releaseStore: () => Promise<void>;
  /** Records saved by the last clean stop, and how to save them at this one (ZooKeeper only). */
  seed?: Array<[string, Versioned]>;
  saveRecords?: (records: ReadonlyArray<[string, Versioned]>) => Promise<void>;
  /** The underlay, when opening the store needed it already. */
  underlay?: Underlay;
}

/** Open the store (and engine) named by the config, around an open dataplane. */
const openAdapters = async (config: Config, log: Logger, dataplane: Dataplane): Promise<Adapters> => {
  if (config.store.kind === 'zk') {
    const { ZkKvStore } = await import('./store/zk-kv-store.js');
    const { readSession, writeSession, readRecordSnapshot, writeRecordSnapshot, snapshotPath } = await import('./store/session-file.js');
    const underlay = await dataplane.resolveUnderlay(config.advertise);
    const owner = { node: config.nodeName ?? underlay.address, servers: config.store.servers, chroot: config.store.chroot };
    const resume = await readSession(config.sessionFile, owner);
    const kv = await ZkKvStore.open({
      servers: config.store.servers,
      chroot: config.store.chroot,
      sessionTimeoutMs: config.zkSessionTimeoutMs,
      watchKind,
      log: log.child({ component: 'zookeeper' }),
      ...(resume ? { resume } : {}),
    });
    const save = (): void => {
      const creds = kv.credentials();
      if (creds) writeSession(config.sessionFile, owner, creds).catch((e: unknown) => log.warn({ err: e }, 'could not save the ZooKeeper session'));
    };
    save();
    kv.onSession((e) => e === 'connected' && save());
    const { HttpDockerEngine } = await import('./engine/http-engine.js');
    return {
      kv,
      dataplane,
      engine: new HttpDockerEngine(config.dockerHost, log.child({ component: 'engine' })),
      releaseStore: () => kv.detach(),
      underlay,
      seed: await readRecordSnapshot(snapshotPath(config.sessionFile), owner),
      saveRecords: (records) => writeRecordSnapshot(snapshotPath(config.sessionFile), owner, records),
    };
  }
  const { FileKvStore } = await import('./store/file-kv-store.js');
  // Single node: nothing to replicate, so no engine connection is needed.
  const kv = await FileKvStore.open(config.store.path);
  return { kv, dataplane, releaseStore: () => kv.close() };
};

/**
 * The node's resolver for container names across nodes. Failing to bind is
 * not fatal: the plugin keeps serving networks, and says why names of other
 * nodes will not resolve.
 */
const startResolver = async (config: Config, address: string, app: App, log: Logger): Promise<{ stop(): Promise<void> } | undefined> => {
  const { Resolver } = await import('./dns/resolver.js');
  const { parseResolvConf } = await import('./dns/upstreams.js');
  const upstreams = config.dnsUpstreams ?? parseResolvConf(await readFile('/etc/resolv.conf', 'utf8').catch(() => ''), [address]);
  const resolver = new Resolver({ view: app.names, upstreams, log: log.child({ component: 'dns' }) });
  try {
    await app.dataplane.ensureLocalAddress(address);
    await resolver.start({ address, port: 53 });
    log.info({ ip: address, upstreams }, 'resolver listening');
    return resolver;
  } catch (e) {
    log.warn({ err: e, ip: address }, `resolver cannot listen on ${address}:53 (${e instanceof Error ? e.message : String(e)}); container names from other nodes will not resolve`);
    return undefined;
  }
};

/**
 * Run the plugin until a signal; resolves with the exit code.
 *
 * The socket is served first: dockerd gives a managed plugin ~10 s to open it
 * and registers it with the capability calls, which need no state. Until the
 * store is connected and the kernel reconciled, every other call answers
 * "cluster store unavailable"; connecting is retried until it works.
 */
export const serve = async (config: Config, log: Logger): Promise<number> => {
  log.info({ socket: config.socket, store: config.store.kind, vxlanPort: config.vxlanPort }, 'tsoverlay starting');
  let app: App | undefined;
  const notYet = (): never => {
    throw new TsoverlayError('STORE_UNAVAILABLE', 'cluster store unavailable: tsoverlay is still connecting to it; try again shortly');
  };
  const server = buildServer(
    {
      get driver() {
        return app?.driver ?? notYet();
      },
      get ipam() {
        return app?.ipam ?? notYet();
      },
    },
    log.child({ component: 'server' }),
    () => app !== undefined,
  );
  let stopping: NodeJS.Signals | undefined;
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    const on = (s: NodeJS.Signals) => {
      stopping = s;
      resolve(s);
    };
    process.once('SIGTERM', () => on('SIGTERM'));
    process.once('SIGINT', () => on('SIGINT'));
  });

  const { NetlinkDataplane } = await import('./dataplane/netlink-dataplane.js');
  const dataplane = new NetlinkDataplane({ log: log.child({ component: 'netlink' }) });
  let adapters: Adapters | undefined;
  let resolver: { stop(): Promise<void> } | undefined;
  const connect = async (): Promise<void> => {
    for (let delay = 500; !stopping; delay = Math.min(delay * 2, 10_000)) {
      try {
        const attempt = async (): Promise<void> => {
          adapters = await openAdapters(config, log, dataplane);
          const { kv, engine } = adapters;
          const firewall = new IptablesFirewall(log.child({ component: 'firewall' }));
          const { seed, underlay } = adapters;
          const started = await createApp({
            config, log, kv, dataplane, firewall,
            ...(engine ? { engine } : {}), ...(seed ? { seed } : {}), ...(underlay ? { underlay } : {}),
          });
          await started.start();
          resolver = config.dnsAddress ? await startResolver(config, config.dnsAddress, started, log) : undefined;
          app = started;
        };
        // A signal while connecting ends the start-up (cli.ts exits after serve returns).
        await Promise.race([attempt(), signalled]);
        break;
      } catch (e) {
        if (isTsoverlayError(e, 'STORE_CONFLICT') || !(e instanceof KvUnavailable || isTsoverlayError(e, 'STORE_UNAVAILABLE'))) {
          throw e; // a configuration or identity problem: the caller stops with its message
        }
        await adapters?.releaseStore().catch(() => undefined);
        adapters = undefined;
        log.warn({ err: e, retryMs: delay }, 'cluster store unreachable; Docker calls get "cluster store unavailable" until it is back');
        await Promise.race([sleep(delay), signalled]);
      }
    }
  };
  // Open the socket once ready — normally within a second or two, so
  // `docker plugin enable` returns a working plugin — but after at most
  // OPEN_SOCKET_AFTER_MS anyway, well inside the ~10 s dockerd gives a
  // managed plugin: with the store down, the plugin still registers and
  // answers "cluster store unavailable" until it is back.
  const connected = connect();
  let failure: unknown;
  connected.catch((e: unknown) => (failure = e));
  await Promise.race([connected.catch(() => undefined), sleep(OPEN_SOCKET_AFTER_MS), signalled]);
  if (failure !== undefined) {
    await dataplane.close().catch(() => undefined);
    throw failure; // a configuration or identity problem: stop with its message
  }
  await mkdir(dirname(config.socket), { recursive: true });
  await unlink(config.socket).catch(() => undefined); // a stale socket makes dockerd hang 15 s
  await server.listen({ path: config.socket });
  const readyAtOpen = app !== undefined;
  log.info({ socket: config.socket }, readyAtOpen ? 'socket open' : 'socket open; still connecting to the store');
  try {
    await connected;
  } catch (e) {
    await server.close().catch(() => undefined);
    await unlink(config.socket).catch(() => undefined);
    await dataplane.close().catch(() => undefined);
    throw e;
  }
  if (app && !stopping) log.info({ socket: config.socket, node: (app as App).node, readyAtOpen }, 'tsoverlay ready');

  const signal = await signalled;
  log.info({ signal }, 'stopping (kernel state stays in place)');
  let code = 0;
  const step = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
    try {
      await fn();
    } catch (e) {
      code = 1;
      log.error({ err: e }, `${what} failed during stop`);
    }
  };
  const deadline = setTimeout(() => {
    log.error('stop took longer than 10 s; exiting');
    process.exit(1);
  }, 10_000);
  deadline.unref();
  await step('closing the server', () => server.close());
  await step('removing the socket', () => unlink(config.socket).catch(() => undefined));
  await step('stopping the resolver', async () => resolver?.stop());
  await step('stopping the loops', async () => app?.stop());
  await step('saving the endpoint records', async () => app && adapters?.saveRecords?.((app as App).stableRecords()));
  // ZooKeeper: the session stays until it times out, so a restart resumes it
  // and peers keep this node's entries; a node that stays down is dropped then.
  await step('releasing the store', async () => adapters?.releaseStore());
  await step('closing netlink', () => dataplane.close());
  return code;
};
