/**
 * `tsoverlay store secure [options]`: give every znode of the cluster's
 * existing ZooKeeper tree (the chroot node included) the ACL of
 * --zk-auth-file, once, while the nodes keep running. Same settings as
 * `serve` (flags or TSOVERLAY_* variables); needs a zk:// store and
 * --zk-auth-file. Restart every node with --zk-auth-file first: a node
 * without the credentials loses access to the tree once it is secured.
 */
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './log.js';

export const STORE_USAGE = 'Usage: tsoverlay store secure [serve options: --store zk://…, --zk-auth-file PATH, --zk-tls-…]';

/** Run a `store` subcommand; returns the exit code. */
export const runStoreCommand = async (args: string[], env: Record<string, string | undefined>): Promise<number> => {
  const [sub, ...rest] = args;
  if (sub !== 'secure') {
    process.stderr.write(`tsoverlay: unknown store command "${sub ?? ''}"\n${STORE_USAGE}\n`);
    return 2;
  }
  let config;
  try {
    config = loadConfig(rest, env);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`tsoverlay: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const store = config.store;
  if (store.kind !== 'zk' || config.zkAuthFile === undefined) {
    process.stderr.write(`tsoverlay store secure: needs a zk:// store and --zk-auth-file (TSOVERLAY_ZK_AUTH_FILE)\n`);
    return 2;
  }
  const log = createLogger(config.logLevel);
  const { ZkKvStore } = await import('./store/zk-kv-store.js');
  const { readZkSecurity } = await import('./store/zk/security-files.js');
  try {
    const security = await readZkSecurity(config);
    const kv = await ZkKvStore.open({ servers: store.servers, chroot: store.chroot, ...security, log: log.child({ component: 'zookeeper' }) });
    try {
      const started = Date.now();
      const { nodes, changed } = await kv.secure();
      log.info({ chroot: store.chroot, nodes, changed, ms: Date.now() - started }, 'store secured');
      process.stdout.write(`secured ${store.chroot}: ${nodes} znodes, ${changed} ACLs set (${nodes - changed} had it already)\n`);
    } finally {
      await kv.close();
    }
    return 0;
  } catch (e) {
    process.stderr.write(`tsoverlay store secure: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
};
