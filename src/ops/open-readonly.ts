/**
 * The store and the kernel as the ops commands open them: with the plugin's
 * own settings (config.ts), and for reading only. ZooKeeper gets a session
 * of its own (the plugin's saved session is left alone) and a missing
 * chroot is not created; the embedded file store is read, never written.
 */
import { access } from 'node:fs/promises';
import type { Config } from '../config.js';
import type { Dataplane, Underlay } from '../dataplane/dataplane.js';
import { ClusterState } from '../store/cluster-state.js';
import type { KvStore } from '../store/kv-store.js';

export interface ReadOnlyView {
  kv: KvStore;
  state: ClusterState;
  dataplane: Dataplane;
  underlay: Underlay;
  /** This node's name, as the plugin computes it. */
  me: string;
  /** Milliseconds the store took to open (ZooKeeper: a session handshake). */
  connectMs: number;
  close(): Promise<void>;
}

/** How long the ops commands wait for ZooKeeper. */
const CONNECT_TIMEOUT_MS = 5000;

export const openStore = async (config: Config): Promise<KvStore> => {
  if (config.store.kind === 'zk') {
    const { ZkKvStore } = await import('../store/zk-kv-store.js');
    const { readZkSecurity } = await import('../store/zk/security-files.js');
    const security = await readZkSecurity(config); // the plugin's credentials and TLS settings
    return ZkKvStore.open({
      servers: config.store.servers,
      chroot: config.store.chroot,
      sessionTimeoutMs: config.zkSessionTimeoutMs,
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      createChroot: false,
      ...security,
    });
  }
  await access(config.store.path).catch(() => {
    throw new Error(`no state file at ${config.store.kind === 'file' ? config.store.path : ''} (has the plugin run on this node?)`);
  });
  const { FileKvStore } = await import('../store/file-kv-store.js');
  return FileKvStore.open(config.store.path);
};

export const openDataplane = async (): Promise<Dataplane> => {
  const { NetlinkDataplane } = await import('../dataplane/netlink-dataplane.js');
  return new NetlinkDataplane();
};

export const openReadOnly = async (config: Config): Promise<ReadOnlyView> => {
  const dataplane = await openDataplane();
  try {
    const underlay = await dataplane.resolveUnderlay(config.advertise);
    const t0 = performance.now();
    const kv = await openStore(config);
    const connectMs = Math.round(performance.now() - t0);
    return {
      kv,
      state: new ClusterState(kv),
      dataplane,
      underlay,
      me: config.nodeName ?? underlay.address,
      connectMs,
      close: async () => {
        await kv.close().catch(() => undefined);
        await dataplane.close().catch(() => undefined);
      },
    };
  } catch (e) {
    await dataplane.close().catch(() => undefined);
    throw e;
  }
};
