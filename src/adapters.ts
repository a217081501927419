/**
 * The real adapters the config names: the cluster store (ZooKeeper, or a
 * file for a single node) and, with ZooKeeper, the node's Docker engine.
 * Loaded on demand, so a single-node plugin never loads the ZooKeeper client.
 */
import type { Logger } from 'pino';
import type { Config, StoreConfig } from './config.js';
import type { Dataplane, Underlay } from './dataplane/dataplane.js';
import type { DockerEngine } from './engine/engine.js';
import { type Metrics, noMetrics } from './metrics/metrics.js';
import type { KvStore, Versioned } from './store/kv-store.js';
import { watchKind } from './store/paths.js';

export interface Adapters {
  kv: KvStore;
  dataplane: Dataplane;
  engine?: DockerEngine;
  /** How the store is let go at stop: ZooKeeper detaches (the next process resumes the session). */
  releaseStore: () => Promise<void>;
  /** Records saved by the last clean stop, and how to save them at this one (ZooKeeper only). */
  seed?: Array<[string, Versioned]>;
  saveRecords?: (records: ReadonlyArray<[string, Versioned]>) => Promise<void>;
}

/** ZooKeeper, resuming the last process's session if it is ours; the engine to replicate through. */
const openZk = async (config: Config, zk: Extract<StoreConfig, { kind: 'zk' }>, log: Logger, dataplane: Dataplane, underlay: Underlay, metrics: Metrics): Promise<Adapters> => {
  const { ZkKvStore } = await import('./store/zk-kv-store.js');
  const { readZkSecurity } = await import('./store/zk/security-files.js');
  const security = await readZkSecurity(config);
  const { readSession, writeSession, readRecordSnapshot, writeRecordSnapshot, snapshotPath } = await import('./store/session-file.js');
  const owner = { node: config.nodeName ?? underlay.address, servers: zk.servers, chroot: zk.chroot };
  const resume = await readSession(config.sessionFile, owner);
  const kv = await ZkKvStore.open({
    servers: zk.servers,
    chroot: zk.chroot,
    sessionTimeoutMs: config.zkSessionTimeoutMs,
    watchKind,
    ...security,
    log: log.child({ component: 'zookeeper' }),
    ...(resume ? { resume } : {}),
  }, metrics);
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
    engine: new HttpDockerEngine(config.dockerHost, log.child({ component: 'engine' }), metrics),
    releaseStore: () => kv.detach(),
    seed: await readRecordSnapshot(snapshotPath(config.sessionFile), owner),
    saveRecords: (records) => writeRecordSnapshot(snapshotPath(config.sessionFile), owner, records),
  };
};

/**
 * Open the store (and engine) named by the config, around an open dataplane
 * and its resolved underlay; both report to `metrics`. `log` is the node's
 * logger (bound to `node`).
 */
export const openAdapters = async (config: Config, log: Logger, dataplane: Dataplane, underlay: Underlay, metrics: Metrics = noMetrics): Promise<Adapters> => {
  if (config.store.kind === 'zk') return openZk(config, config.store, log, dataplane, underlay, metrics);
  const { FileKvStore } = await import('./store/file-kv-store.js');
  // Single node: nothing to replicate, so no engine connection is needed.
  const kv = await FileKvStore.open(config.store.path);
  return { kv, dataplane, releaseStore: () => kv.close() };
};
