/**
 * The benchmark's lab: three hosts of the test harness (test/lab) with one
 * ZooKeeper server (or `zkServers`), a tsoverlay plugin on each host (store zk, log level
 * info, VXLAN on UDP 4789) and, when asked, a swarm of the same three engines
 * (all managers, so a swarm network is listed on every node as soon as the
 * managers agree) whose data path uses UDP 4790 — the two overlays would
 * otherwise fight over 4789 (see shared/docs/multi-host-lab.md).
 */
import { Lab, type LabHost, type StartPluginOptions } from '../test/lab/index.js';
import { progress } from './progress.js';

export interface BenchLab {
  lab: Lab;
  hosts: [LabHost, LabHost, LabHost];
  mtu: number;
  swarm: boolean;
}

export interface BenchLabOptions {
  mtu: number;
  swarm: boolean;
  plugin?: StartPluginOptions;
  /** ZooKeeper servers (default 1; scale-out runs an ensemble of 3, as the tests do) */
  zkServers?: number;
}

export const SWARM_DATA_PORT = 4790;

export async function createBenchLab(opts: BenchLabOptions): Promise<BenchLab> {
  progress(`lab: 3 hosts at underlay MTU ${opts.mtu}, ZooKeeper (${opts.zkServers ?? 1})${opts.swarm ? ', swarm' : ''}`);
  const lab = await Lab.create({
    hosts: [{ name: 'h1', mtu: opts.mtu }, { name: 'h2', mtu: opts.mtu }, { name: 'h3', mtu: opts.mtu }],
    zookeeper: { servers: opts.zkServers ?? 1 },
    plugin: {
      store: 'zk',
      logLevel: 'info',
      // e.g. BENCH_PLUGIN_NODE_OPTIONS='--cpu-prof --cpu-prof-dir=/tmp/prof' to profile the plugins
      ...(process.env['BENCH_PLUGIN_NODE_OPTIONS'] ? { env: { ...process.env, NODE_OPTIONS: process.env['BENCH_PLUGIN_NODE_OPTIONS'] } } : {}),
      ...opts.plugin,
    },
  });
  const bl: BenchLab = { lab, hosts: [lab.host('h1'), lab.host('h2'), lab.host('h3')], mtu: opts.mtu, swarm: opts.swarm };
  try {
    await Promise.all(bl.hosts.map((h) => h.startPlugin()));
    if (opts.swarm) await initSwarm(bl);
  } catch (e) {
    await destroyBenchLab(bl);
    throw e;
  }
  return bl;
}

async function initSwarm(bl: BenchLab): Promise<void> {
  const [h1, ...others] = bl.hosts;
  await h1.docker('swarm', 'init', '--advertise-addr', h1.ip, '--listen-addr', `${h1.ip}:2377`,
    '--data-path-port', String(SWARM_DATA_PORT));
  const token = (await h1.docker('swarm', 'join-token', '-q', 'manager')).trim();
  for (const h of others) {
    await h.docker('swarm', 'join', '--token', token, '--advertise-addr', h.ip, '--listen-addr', `${h.ip}:2377`, `${h1.ip}:2377`);
  }
}

/** Tear the lab down; the hosts' logs are kept (bench/results/lab-logs) when the run failed. */
export async function destroyBenchLab(bl: BenchLab, failed = true): Promise<void> {
  if (bl.swarm) {
    // leave in reverse order so the last manager goes last; errors only mean it is gone already
    for (const h of [...bl.hosts].reverse()) await h.dockerTry('swarm', 'leave', '--force');
  }
  await bl.lab.destroy(failed || process.env['BENCH_KEEP_LOGS'] === '1' ? { keepLogsIn: process.env['TSL_LOG_DIR'] ?? 'bench/results/lab-logs' } : {});
}
