/**
 * Configuration from command-line flags and TSOVERLAY_* environment variables
 * (a flag wins over its variable). Pure: `loadConfig(argv, env)`
 * returns the checked, frozen config or every problem at once.
 */
import { isIP } from 'node:net';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { type Cidr, parseCidr } from './net/ip.js';
import { NETWORK_MODES, type NetworkMode } from './model.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type StoreConfig = { kind: 'file'; path: string } | { kind: 'zk'; servers: string[]; chroot: string };

export interface Config {
  socket: string;
  store: StoreConfig;
  /** IP or interface name; undefined = the interface of the default route. */
  advertise?: string;
  dockerHost: string;
  logLevel: LogLevel;
  vxlanPort: number;
  /** Layout of networks created without `-o tsoverlay.mode`. */
  defaultMode: NetworkMode;
  /** Undefined = the advertise address (unique on the underlay by construction). */
  nodeName?: string;
  defaultPool: Cidr;
  defaultPoolSize: number;
  resyncIntervalMs: number;
  zkSessionTimeoutMs: number;
  /** Digest credentials file (root, 0600/0400) for ZooKeeper; undefined = no auth, open ACLs. */
  zkAuthFile?: string;
  /** TLS to ZooKeeper: CA bundle (PEM) that signs the servers' certificates; undefined = plain TCP. */
  zkTlsCa?: string;
  /** Client certificate and key (PEM; the key file root-owned 0600/0400), with zkTlsCa. */
  zkTlsCert?: string;
  zkTlsKey?: string;
  /** How long peers keep a lost node's forwarding entries after its session ended. */
  peerGraceMs: number;
  sessionFile: string;
  /** Where this node remembers its cluster's identity (default: `cluster-id` beside the session file). */
  clusterIdFile: string;
  /** Take the store as it is, even empty or another cluster's (an explicit operator decision). */
  adoptStore: boolean;
  /** How long a node must be gone (no membership) before a survivor collects its records. */
  collectAfterMs: number;
  /** How long an own endpoint record must be unknown to the engine before it is collected. */
  orphanGraceMs: number;
  /** Resolver address for containers; undefined = no resolver. */
  dnsAddress?: string;
  /** Upstream resolvers ("ip" or "ip:port"); undefined = the host's resolv.conf. */
  dnsUpstreams?: string[];
  /** Queries per second the resolver takes from one source address (bursts of twice that). */
  dnsClientRate: number;
  /** Where GET /metrics, /live and /ready are served; undefined = nowhere (the default). */
  metricsAddress?: { host: string; port: number };
}

interface Setting {
  flag: string;
  env: string;
  default?: string;
  help: string;
  /** A flag without a value (env: 1/true/yes or 0/false/no). */
  boolean?: true;
}

/** Every setting, in the order --help shows them. */
export const SETTINGS = {
  socket: { flag: 'socket', env: 'TSOVERLAY_SOCKET', default: '/run/docker/plugins/tsoverlay.sock', help: 'Unix socket dockerd finds the plugin on' },
  store: {
    flag: 'store',
    env: 'TSOVERLAY_STORE',
    default: 'file:///var/lib/tsoverlay/state.json',
    help: 'cluster state: file:///path.json (embedded, single node) or zk://host:port[,host:port…]/chroot',
  },
  advertise: { flag: 'advertise', env: 'TSOVERLAY_ADVERTISE', help: 'underlay IP or interface for VXLAN (default: the interface of the default route)' },
  dockerHost: { flag: 'docker-host', env: 'TSOVERLAY_DOCKER_HOST', default: 'unix:///var/run/docker.sock', help: 'this node\'s Docker engine API (unix:// or tcp://)' },
  logLevel: { flag: 'log-level', env: 'TSOVERLAY_LOG_LEVEL', default: 'info', help: LOG_LEVELS.join('|') },
  vxlanPort: { flag: 'vxlan-port', env: 'TSOVERLAY_VXLAN_PORT', default: '4789', help: 'UDP port of the VXLAN devices (use another than swarm\'s data path port)' },
  defaultMode: {
    flag: 'default-mode',
    env: 'TSOVERLAY_DEFAULT_MODE',
    default: 'macvlan',
    help: 'layout of networks created without -o tsoverlay.mode: macvlan (the faster one) or bridge (veths on a bridge; see the README)',
  },
  nodeName: { flag: 'node-name', env: 'TSOVERLAY_NODE_NAME', help: 'this node\'s unique identity in the cluster (default: its advertise address)' },
  defaultPool: { flag: 'default-pool', env: 'TSOVERLAY_DEFAULT_POOL', default: '10.128.0.0/9', help: 'IPv4 range subnets are carved from when a network has no --subnet' },
  defaultPoolSize: { flag: 'default-pool-size', env: 'TSOVERLAY_DEFAULT_POOL_SIZE', default: '24', help: 'prefix length of those subnets' },
  resyncIntervalMs: { flag: 'resync-interval-ms', env: 'TSOVERLAY_RESYNC_INTERVAL_MS', default: '30000', help: 'period of the full kernel resync' },
  zkSessionTimeoutMs: {
    flag: 'zk-session-timeout-ms',
    env: 'TSOVERLAY_ZK_SESSION_TIMEOUT_MS',
    default: '10000',
    help: 'ZooKeeper session timeout: how fast peers notice a lost node (they keep its entries for --peer-grace-ms more)',
  },
  peerGraceMs: {
    flag: 'peer-grace-ms',
    env: 'TSOVERLAY_PEER_GRACE_MS',
    default: '120000',
    help: 'how long a node keeps a lost peer\'s forwarding entries after its ZooKeeper session ended: a peer cut off from ZooKeeper only (session timeout + this) keeps its traffic; a dead one is dropped after that',
  },
  zkAuthFile: {
    flag: 'zk-auth-file',
    env: 'TSOVERLAY_ZK_AUTH_FILE',
    help: 'file with ZooKeeper digest credentials "user:password" (owned by root, mode 0600): every znode gets an ACL for that identity only',
  },
  zkTlsCa: {
    flag: 'zk-tls-ca',
    env: 'TSOVERLAY_ZK_TLS_CA',
    help: 'PEM CA bundle: connect to ZooKeeper over TLS (its secureClientPort) and verify the server certificate against it',
  },
  zkTlsCert: { flag: 'zk-tls-cert', env: 'TSOVERLAY_ZK_TLS_CERT', help: 'PEM client certificate for ZooKeeper TLS (with --zk-tls-key)' },
  zkTlsKey: { flag: 'zk-tls-key', env: 'TSOVERLAY_ZK_TLS_KEY', help: 'PEM private key of --zk-tls-cert (owned by root, mode 0600)' },
  sessionFile: {
    flag: 'session-file',
    env: 'TSOVERLAY_SESSION_FILE',
    default: '/var/lib/tsoverlay/zk-session.json',
    help: 'where the ZooKeeper session is kept so a restarted plugin resumes it (peers see no gap)',
  },
  clusterIdFile: {
    flag: 'cluster-id-file',
    env: 'TSOVERLAY_CLUSTER_ID_FILE',
    help: 'where this node remembers the identity of its cluster, to refuse an empty or foreign store (default: cluster-id beside --session-file)',
  },
  adoptStore: {
    flag: 'adopt-store',
    env: 'TSOVERLAY_ADOPT_STORE',
    boolean: true,
    help: 'take the store as this node\'s cluster even if it is empty or belongs to another cluster (after a wiped ensemble; see docs/cluster-state.md)',
  },
  collectAfterMs: {
    flag: 'collect-after-ms',
    env: 'TSOVERLAY_COLLECT_AFTER_MS',
    default: '600000',
    help: 'a node gone (no ZooKeeper membership) this long has its endpoints, addresses and names collected by a live node (docs/cluster-state.md, "Collection")',
  },
  orphanGraceMs: {
    flag: 'orphan-grace-ms',
    env: 'TSOVERLAY_ORPHAN_GRACE_MS',
    default: '60000',
    help: 'this node\'s endpoint records that its Docker engine has not known for this long are collected',
  },
  dnsAddress: {
    flag: 'dns-address',
    env: 'TSOVERLAY_DNS_ADDRESS',
    default: '169.254.53.53',
    help: 'link-local address of the node\'s resolver for container names across nodes ("off" disables it)',
  },
  dnsUpstreams: {
    flag: 'dns-upstream',
    env: 'TSOVERLAY_DNS_UPSTREAM',
    help: 'resolvers for other names, comma-separated ip[:port] (default: nameservers of /etc/resolv.conf)',
  },
  dnsClientRate: {
    flag: 'dns-client-rate',
    env: 'TSOVERLAY_DNS_CLIENT_RATE',
    default: '100',
    help: 'queries per second the resolver takes from one container address (bursts of twice that); more are dropped, so one container cannot starve the others',
  },
  metricsAddress: {
    flag: 'metrics-address',
    env: 'TSOVERLAY_METRICS_ADDRESS',
    help: 'ip:port to serve Prometheus metrics (/metrics) and health (/live, /ready) on over plain HTTP, e.g. 127.0.0.1:9464 (default: off)',
  },
} satisfies Record<keyof Config, Setting>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

export const helpText = (): string => {
  const rows = Object.values(SETTINGS).map(
    (s: Setting) =>
      `  --${s.flag}${s.boolean ? '' : ' VALUE'}\n      ${s.help}\n      env ${s.env}${s.boolean ? '=1' : ''}${s.default !== undefined ? `, default ${s.default}` : ''}`,
  );
  return [
    'Usage: tsoverlay serve [options]',
    '',
    'Runs the tsoverlay Docker network + IPAM plugin (driver name "tsoverlay").',
    '',
    'Options (each also settable through its environment variable; a flag wins):',
    ...rows,
    '  --help',
    '      show this text',
  ].join('\n');
};

const parseStore = (url: string, problems: string[]): StoreConfig | undefined => {
  if (url.startsWith('file://')) {
    const path = url.slice('file://'.length);
    if (!path.startsWith('/')) {
      problems.push(`--store ${url}: a file store needs an absolute path (file:///var/lib/tsoverlay/state.json)`);
      return undefined;
    }
    return { kind: 'file', path };
  }
  const m = /^zk:\/\/([^/]+)(\/.*)?$/.exec(url);
  if (m) {
    const servers = (m[1] ?? '').split(',');
    const bad = servers.filter((s) => !/^[A-Za-z0-9.[\]:-]+:\d{1,5}$/.test(s));
    if (bad.length > 0) {
      problems.push(`--store ${url}: "${bad.join(', ')}" is not host:port`);
      return undefined;
    }
    const chroot = m[2] && m[2] !== '/' ? m[2].replace(/\/+$/, '') : '/tsoverlay';
    return { kind: 'zk', servers, chroot };
  }
  problems.push(`--store ${url}: expected file:///path or zk://host:port[,host:port…]/chroot`);
  return undefined;
};

const parseIntIn = (name: string, text: string, min: number, max: number, problems: string[]): number => {
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    problems.push(`--${name} "${text}" must be a whole number from ${min} to ${max}`);
    return min;
  }
  return Number(text);
};

/** A setting's value: its flag, else its variable (if not empty), else its default. */
type Read = (s: Setting) => string | undefined;

const readSettings = (argv: string[], env: Record<string, string | undefined>, problems: string[]): Read => {
  const options = Object.fromEntries(Object.values(SETTINGS).map((s: Setting) => [s.flag, { type: s.boolean ? ('boolean' as const) : ('string' as const) }]));
  let values: Record<string, string | boolean | undefined> = {};
  try {
    values = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as Record<string, string | undefined>;
  } catch (e) {
    problems.push((e as Error).message);
  }
  return (s) => {
    const v = values[s.flag];
    if (typeof v === 'string') return v;
    if (v === true) return 'true';
    const e = env[s.env];
    if (e !== undefined && e !== '') return e;
    return s.default;
  };
};

/** Where the plugin listens and what it connects to. */
const parseEndpoints = (get: Read, problems: string[]) => {
  const socket = get(SETTINGS.socket) ?? '';
  if (!socket.startsWith('/')) problems.push(`--socket "${socket}" must be an absolute path`);
  const store = parseStore(get(SETTINGS.store) ?? '', problems);
  const advertise = get(SETTINGS.advertise);
  if (advertise !== undefined && isIP(advertise) === 0 && !/^[A-Za-z0-9_.@:-]{1,15}$/.test(advertise)) {
    problems.push(`--advertise "${advertise}" is neither an IP address nor an interface name`);
  }
  const dockerHost = get(SETTINGS.dockerHost) ?? '';
  if (!/^(unix:\/\/\/.+|tcp:\/\/[^/]+:\d+\/?)$/.test(dockerHost)) {
    problems.push(`--docker-host "${dockerHost}" must be unix:///path or tcp://host:port`);
  }
  return { socket, store, advertise, dockerHost };
};

/** Logging, this node's identity, its VXLAN devices and networks, the resync period. */
const parseRunning = (get: Read, problems: string[]) => {
  const req = (s: Setting): string => get(s) ?? '';
  const logLevel = req(SETTINGS.logLevel);
  const level = LOG_LEVELS.find((l) => l === logLevel);
  if (!level) problems.push(`--log-level "${logLevel}" must be one of ${LOG_LEVELS.join(', ')}`);
  const vxlanPort = parseIntIn(SETTINGS.vxlanPort.flag, req(SETTINGS.vxlanPort), 1, 65535, problems);
  const modeText = req(SETTINGS.defaultMode);
  const defaultMode = NETWORK_MODES.find((m) => m === modeText);
  if (!defaultMode) problems.push(`--default-mode "${modeText}" must be ${NETWORK_MODES.join(' or ')}`);
  const nodeName = get(SETTINGS.nodeName);
  if (nodeName !== undefined && !/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$/.test(nodeName)) {
    problems.push(`--node-name "${nodeName}" must be 1-63 letters, digits, '.', '_' or '-'`);
  }
  const poolText = req(SETTINGS.defaultPool);
  const defaultPool = parseCidr(poolText);
  if (!defaultPool || defaultPool.family !== 4) problems.push(`--default-pool "${poolText}" must be an IPv4 CIDR range`);
  const defaultPoolSize = parseIntIn(SETTINGS.defaultPoolSize.flag, req(SETTINGS.defaultPoolSize), 1, 30, problems);
  if (defaultPool && defaultPool.family === 4 && defaultPoolSize < defaultPool.prefix) {
    problems.push(`--default-pool-size ${defaultPoolSize} is larger than the range ${poolText} itself`);
  }
  const resyncIntervalMs = parseIntIn(SETTINGS.resyncIntervalMs.flag, req(SETTINGS.resyncIntervalMs), 1000, 86_400_000, problems);
  return { level, vxlanPort, defaultMode, nodeName, defaultPool, defaultPoolSize, resyncIntervalMs };
};

/** How the node authenticates to ZooKeeper and protects the connection (file paths only: the files are read at start). */
const parseZkSecurity = (get: Read, problems: string[]) => {
  const path = (s: Setting): string | undefined => {
    const v = get(s);
    if (v !== undefined && !v.startsWith('/')) problems.push(`--${s.flag} "${v}" must be an absolute path`);
    return v;
  };
  const zkAuthFile = path(SETTINGS.zkAuthFile);
  const zkTlsCa = path(SETTINGS.zkTlsCa);
  const zkTlsCert = path(SETTINGS.zkTlsCert);
  const zkTlsKey = path(SETTINGS.zkTlsKey);
  if ((zkTlsCert === undefined) !== (zkTlsKey === undefined)) problems.push('--zk-tls-cert and --zk-tls-key go together');
  if (zkTlsCa === undefined && (zkTlsCert !== undefined || zkTlsKey !== undefined)) {
    problems.push('--zk-tls-cert/--zk-tls-key need --zk-tls-ca (the CA that signs the ZooKeeper servers\' certificates)');
  }
  return { zkAuthFile, zkTlsCa, zkTlsCert, zkTlsKey };
};

/** The node resolver: its address ("off": none) and upstreams. */
const parseDns = (get: Read, problems: string[]) => {
  const dnsText = get(SETTINGS.dnsAddress) ?? '';
  const dnsAddress = dnsText === 'off' ? undefined : dnsText;
  if (dnsAddress !== undefined && isIP(dnsAddress) === 0) problems.push(`--dns-address "${dnsText}" must be an IP address or "off"`);
  const upstreamText = get(SETTINGS.dnsUpstreams);
  const dnsUpstreams = upstreamText === undefined ? undefined : upstreamText.split(',').map((u) => u.trim()).filter((u) => u !== '');
  for (const u of dnsUpstreams ?? []) {
    const host = /^\[(.+)\](?::\d+)?$/.exec(u)?.[1] ?? (isIP(u) ? u : u.replace(/:\d+$/, ''));
    if (isIP(host) === 0) problems.push(`--dns-upstream "${u}" is not ip or ip:port`);
  }
  const dnsClientRate = parseIntIn(SETTINGS.dnsClientRate.flag, get(SETTINGS.dnsClientRate) ?? '', 1, 100_000, problems);
  return { dnsAddress, dnsUpstreams, dnsClientRate };
};

/** The metrics listener: "ip:port" or "[ipv6]:port"; unset or "off" = none. */
const parseMetricsAddress = (get: Read, problems: string[]): { host: string; port: number } | undefined => {
  const text = get(SETTINGS.metricsAddress);
  if (text === undefined || text === 'off') return undefined;
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:[\]]+):(\d{1,5})$/.exec(text);
  const host = m?.[1] ?? '';
  const port = Number(m?.[2] ?? 0);
  if (!m || isIP(host) === 0 || port < 1 || port > 65535) {
    problems.push(`--metrics-address "${text}" must be ip:port with a port from 1 to 65535 (e.g. 127.0.0.1:9464 or [::1]:9464), or "off"`);
    return undefined;
  }
  return { host, port };
};

export const loadConfig = (argv: string[], env: Record<string, string | undefined>): Config => {
  const problems: string[] = [];
  const get = readSettings(argv, env, problems);
  const { socket, store, advertise, dockerHost } = parseEndpoints(get, problems);
  const { level, vxlanPort, defaultMode, nodeName, defaultPool, defaultPoolSize, resyncIntervalMs } = parseRunning(get, problems);
  const { dnsAddress, dnsUpstreams, dnsClientRate } = parseDns(get, problems);
  const metricsAddress = parseMetricsAddress(get, problems);
  const zkSecurity = parseZkSecurity(get, problems);
  const sessionFile = get(SETTINGS.sessionFile) ?? '';
  if (!sessionFile.startsWith('/')) problems.push(`--session-file "${sessionFile}" must be an absolute path`);
  const clusterIdFile = get(SETTINGS.clusterIdFile) ?? join(dirname(sessionFile), 'cluster-id');
  if (!clusterIdFile.startsWith('/')) problems.push(`--cluster-id-file "${clusterIdFile}" must be an absolute path`);
  const adoptText = (get(SETTINGS.adoptStore) ?? 'false').toLowerCase();
  const adoptStore = ['1', 'true', 'yes'].includes(adoptText);
  if (!adoptStore && !['0', 'false', 'no'].includes(adoptText)) problems.push(`TSOVERLAY_ADOPT_STORE "${adoptText}" must be 1 or 0`);
  const zkSessionTimeoutMs = parseIntIn(SETTINGS.zkSessionTimeoutMs.flag, get(SETTINGS.zkSessionTimeoutMs) ?? '', 1000, 600_000, problems);
  const collectAfterMs = parseIntIn(SETTINGS.collectAfterMs.flag, get(SETTINGS.collectAfterMs) ?? '', 1000, 2_592_000_000, problems);
  const orphanGraceMs = parseIntIn(SETTINGS.orphanGraceMs.flag, get(SETTINGS.orphanGraceMs) ?? '', 1000, 86_400_000, problems);
  const peerGraceMs = parseIntIn(SETTINGS.peerGraceMs.flag, get(SETTINGS.peerGraceMs) ?? '', 0, 86_400_000, problems);

  if (problems.length > 0 || !store || !level || !defaultPool || !defaultMode) throw new ConfigError(problems);
  return Object.freeze({
    socket,
    store,
    ...(advertise !== undefined ? { advertise } : {}),
    dockerHost,
    logLevel: level,
    vxlanPort,
    defaultMode,
    ...(nodeName !== undefined ? { nodeName } : {}),
    defaultPool,
    defaultPoolSize,
    resyncIntervalMs,
    zkSessionTimeoutMs,
    ...(zkSecurity.zkAuthFile !== undefined ? { zkAuthFile: zkSecurity.zkAuthFile } : {}),
    ...(zkSecurity.zkTlsCa !== undefined ? { zkTlsCa: zkSecurity.zkTlsCa } : {}),
    ...(zkSecurity.zkTlsCert !== undefined && zkSecurity.zkTlsKey !== undefined ? { zkTlsCert: zkSecurity.zkTlsCert, zkTlsKey: zkSecurity.zkTlsKey } : {}),
    peerGraceMs,
    sessionFile,
    clusterIdFile,
    adoptStore,
    collectAfterMs,
    orphanGraceMs,
    ...(dnsAddress !== undefined ? { dnsAddress } : {}),
    ...(dnsUpstreams !== undefined ? { dnsUpstreams } : {}),
    dnsClientRate,
    ...(metricsAddress !== undefined ? { metricsAddress } : {}),
  });
};
