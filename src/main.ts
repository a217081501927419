/**
 * Composition root: config → logger → dataplane → store → core → reconcile →
 * server. `createApp` wires everything without listening (tests use it with
 * fakes); `serve` runs the plugin until SIGTERM/SIGINT.
 */
import { mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import type { Dataplane, Underlay } from './dataplane/dataplane.js';
import { NetworkDriver } from './driver/network-driver.js';
import { Ipam } from './ipam/ipam.js';
import { Reconciler } from './reconcile/reconciler.js';
import { buildServer } from './server/build-server.js';
import { ClusterState } from './store/cluster-state.js';
import type { KvStore } from './store/kv-store.js';

/** Docker's overlay driver starts its VNIs here; we do the same. */
export const VNI_START = 4096;

export interface App {
  server: FastifyInstance;
  driver: NetworkDriver;
  ipam: Ipam;
  reconciler: Reconciler;
  state: ClusterState;
  underlay: Underlay;
}

export const createApp = async (deps: { config: Config; log: Logger; kv: KvStore; dataplane: Dataplane }): Promise<App> => {
  const { config, log, kv, dataplane } = deps;
  const underlay = await dataplane.resolveUnderlay(config.advertise);
  log.info({ underlay: underlay.ifname, ip: underlay.address, mtu: underlay.mtu }, 'underlay resolved');
  const state = new ClusterState(kv);
  await state.init();
  const reconciler = new Reconciler({
    state,
    dataplane,
    underlay,
    node: config.nodeName,
    vxlanPort: config.vxlanPort,
    intervalMs: config.resyncIntervalMs,
    log: log.child({ component: 'reconcile' }),
  });
  const ipam = new Ipam({
    state,
    config: { node: config.nodeName, defaultPool: config.defaultPool, defaultPoolSize: config.defaultPoolSize },
  });
  const driver = new NetworkDriver({
    state,
    dataplane,
    underlay,
    config: { node: config.nodeName, vxlanPort: config.vxlanPort, vniStart: VNI_START },
    log: log.child({ component: 'driver' }),
    onChange: () => reconciler.markDirty(),
  });
  const server = buildServer({ driver, ipam }, log.child({ component: 'server' }));
  return { server, driver, ipam, reconciler, state, underlay };
};

/** Open the real adapters named by the config. */
const openAdapters = async (config: Config): Promise<{ kv: KvStore; dataplane: Dataplane }> => {
  const { NetlinkDataplane } = await import('./dataplane/netlink-dataplane.js');
  const dataplane = new NetlinkDataplane({});
  if (config.store.kind === 'zk') {
    throw new Error('--store zk:// is not supported by this build yet; use file:///path (single node)');
  }
  const { FileKvStore } = await import('./store/file-kv-store.js');
  const kv = await FileKvStore.open(config.store.path);
  return { kv, dataplane };
};

/** Run the plugin until a signal; resolves with the exit code. */
export const serve = async (config: Config, log: Logger): Promise<number> => {
  log.info({ socket: config.socket, store: config.store.kind, vxlanPort: config.vxlanPort }, 'tsoverlay starting');
  const { kv, dataplane } = await openAdapters(config);
  const app = await createApp({ config, log, kv, dataplane });
  const first = await app.reconciler.start();
  log.info(first, 'initial reconcile done');

  await mkdir(dirname(config.socket), { recursive: true });
  await unlink(config.socket).catch(() => undefined); // a stale socket makes dockerd hang 15 s
  await app.server.listen({ path: config.socket });
  log.info({ socket: config.socket }, 'tsoverlay ready');

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
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
  await step('closing the server', () => app.server.close());
  await step('removing the socket', () => unlink(config.socket).catch(() => undefined));
  await step('stopping the reconciler', () => app.reconciler.stop());
  await step('closing the store', () => kv.close());
  await step('closing netlink', () => dataplane.close());
  return code;
};
