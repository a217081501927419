/** Wiring for component tests: the real core and Fastify edge on fakes. */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.js';
import { FakeDataplane } from '../../src/dataplane/fake-dataplane.js';
import type { Firewall } from '../../src/dataplane/firewall.js';
import { FakeDockerEngine } from '../../src/engine/fake-engine.js';
import { type App, createApp } from '../../src/main.js';
import type { Metrics } from '../../src/metrics/metrics.js';
import type { Edge } from '../../src/server/build-server.js';
import { MemoryKvStore } from '../../src/store/memory-kv-store.js';

export interface Harness {
  app: App;
  kv: MemoryKvStore;
  dp: FakeDataplane;
  /** POST like dockerd does: JSON body without Content-Type. */
  call(method: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }>;
  /** Every store node, to assert that a refused call changed nothing. */
  snapshot(): string;
}

/** One folder per test process for the nodes' remembered cluster ids, removed at exit. */
let idDir: string | undefined;
const clusterIdFile = (): string => {
  if (!idDir) {
    const dir = mkdtempSync(join(tmpdir(), 'tsoverlay-component-'));
    idDir = dir;
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return join(idDir, `cluster-id-${randomBytes(4).toString('hex')}`);
};

export const harness = async (
  opts: {
    kv?: MemoryKvStore;
    dp?: FakeDataplane;
    args?: string[];
    node?: string;
    engine?: FakeDockerEngine;
    firewall?: Firewall;
    /** Serve on this edge, as serve.ts does (its core is filled by the test). */
    edge?: Edge;
    metrics?: Metrics;
  } = {},
): Promise<Harness> => {
  const kv = opts.kv ?? new MemoryKvStore();
  const dp = opts.dp ?? new FakeDataplane();
  const args = opts.args ?? [];
  const idArgs = args.includes('--cluster-id-file') ? [] : ['--cluster-id-file', clusterIdFile()];
  const config = loadConfig(['--node-name', opts.node ?? 'node1', '--dns-address', 'off', ...idArgs, ...args], {});
  const app = await createApp({
    config,
    log: pino({ level: 'silent' }),
    kv,
    dataplane: dp,
    ...(opts.engine ? { engine: opts.engine } : {}),
    ...(opts.firewall ? { firewall: opts.firewall } : {}),
    ...(opts.edge ? { edge: opts.edge } : {}),
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
  });
  const call = async (method: string, body?: unknown) => {
    const payload = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
    const res = await app.server.inject({
      method: 'POST',
      url: `/${method}`,
      headers: { accept: 'application/vnd.docker.plugins.v1.2+json', host: '' },
      payload,
    });
    return { status: res.statusCode, json: res.body === '' ? {} : (JSON.parse(res.body) as Record<string, unknown>) };
  };
  // what app.start does first: learn this node's endpoints (a restart over an existing store finds them)
  await app.driver.init();
  const snapshot = () => JSON.stringify(kv.snapshot());
  if (opts.engine) opts.engine.plugin = call;
  return { app, kv, dp, call, snapshot };
};

export const NET = 'c8b3fae7'.padEnd(64, '0');
export const NET2 = 'd9c4fae8'.padEnd(64, '1');
export const EP = 'f80e0567'.padEnd(64, 'a');
export const EP2 = 'a1b2c3d4'.padEnd(64, 'b');

/** Docker's network-create sequence with tsoverlay as IPAM; returns the pool id. */
export const createNetwork = async (
  h: Harness,
  opts: { id?: string; subnet?: string; generic?: Record<string, string>; internal?: boolean } = {},
): Promise<{ poolId: string; pool: string; gateway: string; res: { status: number; json: Record<string, unknown> } }> => {
  const pool = await h.call('IpamDriver.RequestPool', { AddressSpace: 'tsoverlay-local', Pool: opts.subnet ?? '', SubPool: '', Options: {}, V6: false });
  const poolId = pool.json['PoolID'] as string;
  const gw = await h.call('IpamDriver.RequestAddress', { PoolID: poolId, Address: '', Options: { RequestAddressType: 'com.docker.network.gateway' } });
  const res = await h.call('NetworkDriver.CreateNetwork', {
    NetworkID: opts.id ?? NET,
    Options: {
      'com.docker.network.enable_ipv6': false,
      'com.docker.network.generic': opts.generic ?? {},
      ...(opts.internal ? { 'com.docker.network.internal': true } : {}),
    },
    IPv4Data: [{ AddressSpace: 'tsoverlay-local', Gateway: gw.json['Address'], Pool: pool.json['Pool'] }],
    IPv6Data: [],
  });
  return { poolId, pool: pool.json['Pool'] as string, gateway: gw.json['Address'] as string, res };
};

/** Docker's container-attach sequence; returns the Join reply. */
export const attach = async (h: Harness, poolId: string, opts: { net?: string; ep?: string; ip?: string } = {}) => {
  const addr = await h.call('IpamDriver.RequestAddress', { PoolID: poolId, Address: opts.ip ?? '', Options: null });
  const address = addr.json['Address'] as string;
  const ce = await h.call('NetworkDriver.CreateEndpoint', {
    NetworkID: opts.net ?? NET,
    EndpointID: opts.ep ?? EP,
    Interface: { Address: address, AddressIPv6: '', MacAddress: '' },
    Options: { 'com.docker.network.endpoint.exposedports': [], 'com.docker.network.portmap': [] },
  });
  const join = await h.call('NetworkDriver.Join', { NetworkID: opts.net ?? NET, EndpointID: opts.ep ?? EP, SandboxKey: '/var/run/docker/netns/5f07dccd1bf9', Options: {} });
  return { address, ce, join };
};

/** The cluster network record behind an engine network id. */
export const networkOf = async (h: Harness, engineNetworkId: string) => {
  const key = await h.app.state.resolveNetwork(engineNetworkId);
  return key ? h.app.state.getNetwork(key) : undefined;
};
