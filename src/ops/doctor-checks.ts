/**
 * `tsoverlay doctor`'s look at this node's environment, one function per
 * check, each answering ok, warn or fail with what to do about it. They
 * read only: the kernel features are tried in a network namespace of their
 * own that ends with the probe (nothing is left behind), the resolver gets
 * one local query, and no packet goes beyond this host.
 */
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { request } from 'node:http';
import { readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { canonicalSubnet, DNS_CHAIN } from '../dataplane/resolver-filter.js';

export type Verdict = 'ok' | 'warn' | 'fail';

export interface Check {
  check: string;
  status: Verdict;
  detail: string;
  /** What to do about a warn or fail. */
  fix?: string;
}

const run = (file: string, args: string[], timeoutMs = 5000): Promise<{ ok: boolean; out: string }> =>
  new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (e, stdout, stderr) =>
      resolve({ ok: !e, out: `${stdout}${e ? `${stderr}${stderr ? '' : e.message}` : ''}` }),
    );
  });

/** GET /ready on the plugin's socket: answered (and ready) as dockerd would reach it. */
export const checkPluginSocket = (socket: string): Promise<Check> =>
  new Promise((resolve) => {
    const check = 'plugin socket';
    const fix = `start the plugin ("tsoverlay serve" with this node's options, or "docker plugin enable tsoverlay"); it listens on ${socket}`;
    const req = request({ socketPath: socket, path: '/ready', method: 'GET', timeout: 3000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        if (res.statusCode === 200) resolve({ check, status: 'ok', detail: `${socket} answers, ready` });
        else resolve({ check, status: 'fail', detail: `${socket} answers ${res.statusCode}: ${body.slice(0, 200)}`, fix: 'the plugin is up but not ready: its log says why (cluster store unreachable or refused)' });
      });
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 3 s')));
    req.on('error', (e) => resolve({ check, status: 'fail', detail: `${socket}: ${e.message}`, fix }));
    req.end();
  });

/** A kernel UDP socket on the VXLAN port (the VXLAN devices' own), in /proc/net/udp or udp6. */
export const checkVxlanSocket = async (port: number, networksHere: number): Promise<Check> => {
  const check = 'vxlan udp port';
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  const tables = await Promise.all(['/proc/net/udp', '/proc/net/udp6'].map((f) => readFile(f, 'utf8').catch(() => '')));
  const bound = tables.some((t) => t.split('\n').some((l) => (l.trim().split(/\s+/)[1] ?? '').endsWith(hex.trim())));
  if (bound) return { check, status: 'ok', detail: `UDP ${port} is bound (the VXLAN devices receive on it)` };
  if (networksHere === 0) return { check, status: 'ok', detail: `UDP ${port} not bound yet (no tsoverlay network on this node)` };
  return { check, status: 'fail', detail: `no socket on UDP ${port} although ${networksHere} network(s) are on this node`, fix: 'the VXLAN devices are down or missing: see the status differences above, or another program holds the port (--vxlan-port)' };
};

/** iptables rules of this namespace that drop or reject the VXLAN port. */
export const checkVxlanFirewall = async (port: number): Promise<Check> => {
  const check = 'vxlan firewall';
  const saved = await run('iptables-save', ['-t', 'filter']);
  if (!saved.ok) return { check, status: 'warn', detail: `iptables-save failed: ${saved.out.trim().slice(0, 200)}`, fix: 'run doctor as root with iptables installed' };
  const dropping = saved.out
    .split('\n')
    .filter((l) => l.startsWith('-A ') && new RegExp(`--dport ${port}(\\s|$)`).test(l) && /-j (DROP|REJECT)/.test(l) && /-p udp/.test(l));
  if (dropping.length === 0) return { check, status: 'ok', detail: `no filter rule drops UDP ${port}` };
  return { check, status: 'fail', detail: `rules drop UDP ${port}: ${dropping.join('; ')}`, fix: `delete them (iptables ${dropping[0]?.replace(/^-A /, '-D ')}) and accept UDP ${port} from the other nodes' VTEPs` };
};

/** Sources a chain lets through (`-s ADDR[/32|/128] -j RETURN`) in iptables-save output; undefined without the chain's rules. */
export const allowedSources = (saved: string, chain: string): Set<string> | undefined => {
  const rules = saved.split('\n').filter((l) => l.startsWith(`-A ${chain} `));
  if (rules.length === 0) return undefined;
  const sources = rules.flatMap((l) => (/ -j RETURN/.test(l) ? [/ -s (\S+?)(?:\/(?:32|128))?(?:\s|$)/.exec(l)?.[1] ?? ''] : []));
  return new Set(sources.filter((x) => x !== ''));
};

/** The raw-table chain that takes VXLAN from members only: every live member's VTEP must be let through. */
export const checkVxlanMembers = async (members: ReadonlyArray<{ node: string; vtep: string }>, chain = 'TSOVERLAY-VXLAN'): Promise<Check> => {
  const check = 'vxlan members filter';
  const v6 = members.some((m) => m.vtep.includes(':'));
  const saved = await run(v6 ? 'ip6tables-save' : 'iptables-save', ['-t', 'raw']);
  if (!saved.ok) return { check, status: 'warn', detail: `iptables-save -t raw failed: ${saved.out.trim().slice(0, 200)}`, fix: 'run doctor as root with iptables installed' };
  const allowed = allowedSources(saved.out, chain);
  if (!allowed) return { check, status: 'ok', detail: `no ${chain} chain: VXLAN is not filtered by source` };
  const dropped = members.filter((m) => m.vtep !== '' && !allowed.has(m.vtep));
  if (dropped.length === 0) return { check, status: 'ok', detail: `${chain} lets every live member through (${members.length})` };
  return {
    check,
    status: 'fail',
    detail: `${chain} drops VXLAN from live member(s) ${dropped.map((m) => `${m.node} (${m.vtep})`).join(', ')}`,
    fix: 'the plugin rewrites the chain from membership when it changes and checks it every pass; if it stays, its log says why (firewall), or restart the plugin',
  };
};

/** `-s <subnet> -i <device>` pairs a chain ACCEPTs, in iptables-save output; undefined without the chain's rules. */
export const acceptedSources = (saved: string, chain: string): Set<string> | undefined => {
  const rules = saved.split('\n').filter((l) => l.startsWith(`-A ${chain} `));
  if (rules.length === 0) return undefined;
  const pairs = rules.flatMap((l) => {
    const m = / -s (\S+) -i (\S+) -j ACCEPT(?:\s|$)/.exec(l);
    return m ? [`${m[2]} ${m[1]}`] : [];
  });
  return new Set(pairs);
};

/** The resolver's source filter: an ACCEPT for each network here, its subnet from its device. */
export const checkResolverSources = async (
  address: string | undefined,
  networks: ReadonlyArray<{ name: string; device: string; subnets: readonly string[] }>,
  chain = DNS_CHAIN,
): Promise<Check> => {
  const check = 'resolver source filter';
  if (!address) return { check, status: 'ok', detail: 'resolver disabled; nothing to check' };
  const family = address.includes(':') ? 6 : 4;
  const saved = await run(family === 6 ? 'ip6tables-save' : 'iptables-save', ['-t', 'filter']);
  if (!saved.ok) return { check, status: 'warn', detail: `iptables-save -t filter failed: ${saved.out.trim().slice(0, 200)}`, fix: 'run doctor as root with iptables installed' };
  return judgeResolverSources(saved.out, family, networks, chain);
};

/** The verdict of `checkResolverSources` on iptables-save output of the resolver's family. */
export const judgeResolverSources = (
  saved: string,
  family: 4 | 6,
  networks: ReadonlyArray<{ name: string; device: string; subnets: readonly string[] }>,
  chain = DNS_CHAIN,
): Check => {
  const check = 'resolver source filter';
  const fix = 'the plugin writes the chain from the networks here as they change and checks it every pass; if it stays, its log says why ("resolver source filter"), or restart the plugin';
  const wanted = networks.flatMap((n) => n.subnets.flatMap((s) => {
    const subnet = canonicalSubnet(s, family);
    return subnet ? [{ name: n.name, key: `${n.device} ${subnet}` }] : [];
  }));
  const accepted = acceptedSources(saved, chain);
  if (!accepted) {
    if (wanted.length === 0) return { check, status: 'ok', detail: `no ${chain} chain (no network here)` };
    return { check, status: 'fail', detail: `no ${chain} chain: the resolver takes queries from any tsoverlay device, or none (${wanted.length} subnet(s) here)`, fix };
  }
  const jumped = saved.split('\n').some((l) => l.startsWith('-A INPUT ') && l.endsWith(` -j ${chain}`));
  const missing = wanted.filter((w) => !accepted.has(w.key));
  if (missing.length > 0) {
    return { check, status: 'fail', detail: `${chain} refuses the queries of ${missing.map((m) => `${m.name} (${m.key.replace(' ', ' from ')})`).join(', ')}`, fix };
  }
  if (!jumped) return { check, status: 'fail', detail: `${chain} is there but INPUT does not jump to it`, fix };
  return { check, status: 'ok', detail: `${chain} takes each network's queries from its own device only (${wanted.length} subnet(s))` };
};

/** Create each device kind tsoverlay uses in a throwaway network namespace (gone when the probe exits). */
export const checkKernelFeatures = async (): Promise<Check> => {
  const check = 'kernel features';
  const probe = [
    'ip link add tsdoc-br type bridge',
    'ip link add tsdoc-mv link tsdoc-br type macvlan mode bridge',
    'ip link add tsdoc-vx type vxlan id 42 dstport 4789 local 127.0.0.1 nolearning',
    'ip link add tsdoc-v0 type veth peer name tsdoc-v1',
  ];
  const missing: string[] = [];
  for (const [kind, cmd] of [['bridge', probe[0]], ['macvlan', `${probe[0]} && ${probe[1]}`], ['vxlan', probe[2]], ['veth', probe[3]]] as const) {
    const r = await run('unshare', ['--net', 'sh', '-c', cmd ?? '']);
    if (!r.ok) missing.push(`${kind} (${r.out.trim().split('\n').pop() ?? ''})`);
  }
  if (missing.length === 0) return { check, status: 'ok', detail: 'bridge, macvlan, vxlan and veth devices can be created' };
  return { check, status: 'fail', detail: `cannot create: ${missing.join('; ')}`, fix: 'load the modules (modprobe vxlan macvlan bridge veth) or use a kernel with them; run doctor as root' };
};

/** The backend `iptables` uses against the one holding dockerd's DOCKER chains. */
export const checkIptablesBackend = async (): Promise<Check> => {
  const check = 'iptables backend';
  const v = await run('iptables', ['-V']);
  if (!v.ok) return { check, status: 'fail', detail: `iptables -V failed: ${v.out.trim()}`, fix: 'install iptables (the plugin adds its rules with it)' };
  const ours = v.out.includes('nf_tables') ? 'nft' : v.out.includes('legacy') ? 'legacy' : 'unknown';
  const [nft, legacy] = await Promise.all([run('iptables-nft-save', ['-t', 'filter']), run('iptables-legacy-save', ['-t', 'filter'])]);
  const docker = (r: { ok: boolean; out: string }): boolean => r.ok && /^:DOCKER /m.test(r.out);
  const dockerd = docker(nft) ? 'nft' : docker(legacy) ? 'legacy' : undefined;
  if (!dockerd) return { check, status: 'warn', detail: `iptables is ${ours}; no DOCKER chain in either backend (dockerd not running, or with --iptables=false)`, fix: 'start dockerd, then run doctor again' };
  if (dockerd === ours) return { check, status: 'ok', detail: `iptables and dockerd both use ${ours}` };
  return {
    check,
    status: 'fail',
    detail: `iptables is ${ours} but dockerd's rules are in ${dockerd}: the plugin's rules would not be seen with dockerd's`,
    fix: `update-alternatives --set iptables /usr/sbin/iptables-${dockerd} (and ip6tables), then restart the plugin (a managed plugin: build it with --iptables ${dockerd})`,
  };
};

/** One DNS query the resolver answers at once (opcode STATUS → NOTIMP), to its address, from this host. */
export const checkResolver = (address: string | undefined): Promise<Check> => {
  const check = 'resolver';
  if (!address) return Promise.resolve({ check, status: 'ok', detail: 'disabled (--dns-address off)' });
  return new Promise((resolve) => {
    const sock = createSocket(address.includes(':') ? 'udp6' : 'udp4');
    const query = Buffer.alloc(12);
    const id = randomBytes(2).readUInt16BE(0);
    query.writeUInt16BE(id, 0);
    query.writeUInt16BE(2 << 11, 2); // opcode STATUS
    const done = (c: Check): void => {
      clearTimeout(timer);
      sock.close();
      resolve(c);
    };
    const timer = setTimeout(
      () => done({ check, status: 'fail', detail: `no answer from ${address}:53 within 2 s`, fix: 'the plugin could not bind it (its log says "resolver": another DNS server on the address?), or the plugin is down' }),
      2000,
    );
    sock.on('message', (msg) => {
      if (msg.length >= 2 && msg.readUInt16BE(0) === id) done({ check, status: 'ok', detail: `${address}:53 answers` });
    });
    sock.on('error', (e) => done({ check, status: 'fail', detail: `${address}:53: ${e.message}`, fix: 'start the plugin; check --dns-address' }));
    sock.send(query, 53, address);
  });
};

/** The daemon's `dns` setting names the resolver first, as the README asks. */
export const checkDaemonDns = async (path: string, address: string | undefined): Promise<Check> => {
  const check = 'daemon.json dns';
  if (!address) return { check, status: 'ok', detail: 'resolver disabled; nothing to check' };
  const fix = `put { "dns": ["${address}", "<your usual resolver>"] } in ${path} and restart dockerd (or run containers with --dns ${address})`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    return { check, status: 'warn', detail: `${path}: ${(e as Error).message.split('\n')[0]}`, fix };
  }
  const dns = (parsed as { dns?: unknown } | null)?.dns;
  const list = Array.isArray(dns) ? dns.filter((x): x is string => typeof x === 'string') : [];
  if (list[0] === address) return { check, status: 'ok', detail: `${path} dns ${JSON.stringify(list)}` };
  if (list.includes(address)) return { check, status: 'warn', detail: `${path} dns ${JSON.stringify(list)}: ${address} is not first`, fix };
  return { check, status: 'warn', detail: `${path} has no dns ${address}: containers resolve names of other nodes only with --dns`, fix };
};
