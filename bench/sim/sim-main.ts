/**
 * The simulated nodes' process (bench/scale-out.ts starts it inside the lab,
 * in the switch namespace, where the lab's ZooKeeper servers are reachable):
 *
 *   node --import=@tapjs/typescript/import bench/sim/sim-main.ts \
 *     --servers 172.31.5.201:2181,... --chroot /tsoverlay-<lab> --nodes 30 [--shared 10.99.0.0/24] [--no-follow]
 *     [--first 100 --total 300] [--group-size 10] [--shared-limit 100] [--staged]
 *
 * Talks JSON lines: on stdout `{"ready":…}` once every sim is registered and
 * on its networks (with --staged: registered only, and the networks come
 * with the commands `create` then `join`, see sim-cluster.ts), then one
 * answer per command read from stdin:
 *   {"cmd":"create"}                                                          → {"created":G}
 *   {"cmd":"join"}                                                            → {"joined":true}
 *   {"cmd":"churn","target":"own"|"shared"|"mixed","rate":R,"seconds":S,"holdMs":H}  → {"churn":ChurnResult}
 *   {"cmd":"stats"}                                                           → {"stats":{…}}
 *   {"cmd":"stop"}                                                            → {"stopped":true}, exit 0
 * Anything else on stdout is a bug; errors go to stderr and end the process.
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { watchKind } from '../../src/store/paths.js';
import { ZkKvStore } from '../../src/store/zk-kv-store.js';
import { DEFAULT_GROUP_SIZE, SimCluster, type ChurnTarget } from './sim-cluster.js';

const say = (msg: unknown): void => {
  process.stdout.write(`${JSON.stringify(msg)}\n`);
};

const cpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      servers: { type: 'string' },
      chroot: { type: 'string' },
      nodes: { type: 'string', default: '10' },
      first: { type: 'string', default: '0' },
      total: { type: 'string' },
      staged: { type: 'boolean', default: false },
      'shared-limit': { type: 'string' },
      shared: { type: 'string' },
      'group-size': { type: 'string', default: String(DEFAULT_GROUP_SIZE) },
      'no-follow': { type: 'boolean', default: false },
      'session-timeout-ms': { type: 'string', default: '10000' },
    },
  });
  if (!values.servers || !values.chroot) throw new Error('--servers and --chroot are required');
  const servers = values.servers.split(',');
  const chroot = values.chroot;
  const log = pino({ level: process.env['SIM_LOG_LEVEL'] ?? 'silent' }, pino.destination(2));
  const t0 = performance.now();
  const cluster = await (values.staged ? SimCluster.register : SimCluster.start)({
    nodes: Number(values.nodes),
    first: Number(values.first),
    ...(values.total ? { total: Number(values.total) } : {}),
    ...(values['shared-limit'] ? { sharedLimit: Number(values['shared-limit']) } : {}),
    groupSize: Number(values['group-size']),
    follow: !values['no-follow'],
    ...(values.shared ? { shared: values.shared } : {}),
    log,
    openStore: (name) => ZkKvStore.open({
      servers, chroot, createChroot: false, watchKind, sessionTimeoutMs: Number(values['session-timeout-ms']),
      log: log.child({ node: name }),
    }),
  });
  say({ ready: { nodes: cluster.size, setupS: Math.round((performance.now() - t0) / 100) / 10, cpuS: cpuSeconds() } });
  for await (const line of createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    const cmd = JSON.parse(line) as { cmd: string; target?: ChurnTarget; rate?: number; seconds?: number; holdMs?: number };
    if (cmd.cmd === 'create') {
      say({ created: await cluster.createGroups() });
    } else if (cmd.cmd === 'join') {
      await cluster.joinNetworks();
      say({ joined: true });
    } else if (cmd.cmd === 'churn') {
      const cpu0 = cpuSeconds();
      const r = await cluster.churn(cmd.target ?? 'own', cmd.rate ?? 10, cmd.seconds ?? 10, cmd.holdMs === undefined ? {} : { holdMs: cmd.holdMs });
      say({ churn: { ...r, simCpuS: Math.round((cpuSeconds() - cpu0) * 100) / 100 } });
    } else if (cmd.cmd === 'stats') {
      say({ stats: { nodes: cluster.size, followReads: cluster.followReads(), cpuS: cpuSeconds(), rssMiB: Math.round(process.memoryUsage().rss / 1048576) } });
    } else if (cmd.cmd === 'stop') {
      await cluster.stop();
      say({ stopped: true });
      break;
    } else throw new Error(`unknown command ${line}`);
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`sim failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exit(1);
  },
);
