// Helpers for tests of tsoverlay networks across lab hosts: create a network
// and learn its devices, wait for it (or its removal) on other hosts, read a
// container's endpoint, ping until a condition holds. Used by
// test/integration/multi-host*.test.ts.
import type { Test } from 'tap';
import type { LabHost } from './host.js';
import { pingResult, type PingResult } from './ping.js';
import { CommandError, run } from './proc.js';
import { waitFor } from './wait.js';

export const DRIVER = 'tsoverlay';

export interface NetInfo {
  Name: string;
  Id: string;
  Driver: string;
  Internal: boolean;
  IPAM: { Driver: string; Config: Array<{ Subnet?: string; Gateway?: string }> | null };
  Containers: Record<string, { Name: string; IPv4Address: string; MacAddress: string }> | null;
  Options: Record<string, string> | null;
}

export interface OverlayNet {
  name: string;
  /** tsvx-<vni hex6> */
  vxlan: string;
  /** tsbr-<vni hex6> */
  bridge: string;
  vni: number;
  info: NetInfo;
}

export async function inspectNet(h: LabHost, name: string): Promise<NetInfo> {
  const arr = JSON.parse(await h.docker('network', 'inspect', name)) as NetInfo[];
  if (!arr[0]) throw new Error(`no network ${name} on ${h.name}`);
  return arr[0];
}

export async function hasNetwork(h: LabHost, name: string): Promise<boolean> {
  return (await h.dockerTry('network', 'inspect', name)).code === 0;
}

/** Subnet of a network as docker shows it. */
export const subnetOf = (n: NetInfo): string | undefined => n.IPAM.Config?.[0]?.Subnet;
export const gatewayOf = (n: NetInfo): string | undefined => n.IPAM.Config?.[0]?.Gateway;

/** VXLAN devices (tsvx-*) in the host's namespace. */
export async function vxlanDevices(h: LabHost): Promise<string[]> {
  return (await h.tsLinks()).filter((l) => l.startsWith('tsvx-')).sort();
}

/**
 * `docker network create -d tsoverlay --ipam-driver tsoverlay --subnet S ...args NAME`
 * on one host; returns the network with its devices there (the one tsvx-*
 * device that appeared, ignoring the ones in `known`, e.g. devices that other
 * hosts' networks are replicating here at the same time).
 */
export async function createOverlay(
  h: LabHost,
  name: string,
  subnet: string,
  opts: { args?: string[]; known?: Iterable<string> } = {},
): Promise<OverlayNet> {
  const before = new Set([...(await vxlanDevices(h)), ...(opts.known ?? [])]);
  await h.docker('network', 'create', '-d', DRIVER, '--ipam-driver', DRIVER, '--subnet', subnet, ...(opts.args ?? []), name);
  const after = await vxlanDevices(h);
  const added = after.filter((d) => !before.has(d));
  if (added.length !== 1) {
    throw new Error(`expected one new tsvx-* device on ${h.name} for ${name}, found [${added.join(', ')}] (before [${[...before].join(', ')}], after [${after.join(', ')}])`);
  }
  const vxlan = added[0]!;
  const hex = vxlan.slice('tsvx-'.length);
  return { name, vxlan, bridge: `tsbr-${hex}`, vni: Number.parseInt(hex, 16), info: await inspectNet(h, name) };
}

/** Wait until `docker network inspect NAME` succeeds on the host; returns what it said. */
export function waitNetwork(h: LabHost, name: string, timeoutMs = 20_000): Promise<NetInfo> {
  return waitFor(() => inspectNet(h, name), { what: `network ${name} on ${h.name}`, timeoutMs, intervalMs: 100 });
}

/** Wait until the network is gone from the host. */
export async function waitNetworkGone(h: LabHost, name: string, timeoutMs = 20_000): Promise<void> {
  await waitFor(async () => !(await hasNetwork(h, name)), { what: `network ${name} to leave ${h.name}`, timeoutMs, intervalMs: 100 });
}

export interface Endpoint {
  ip: string;
  prefixLen: number;
  mac: string;
}

/** A container's address and MAC on a network, from docker inspect. */
export async function endpointOf(h: LabHost, container: string, net: string): Promise<Endpoint> {
  const out = await h.docker('container', 'inspect', '-f', '{{json .NetworkSettings.Networks}}', container);
  const nets = JSON.parse(out) as Record<string, { IPAddress: string; IPPrefixLen: number; MacAddress: string }>;
  const n = nets[net];
  if (!n?.IPAddress) throw new Error(`${container} on ${h.name} has no address on ${net}: ${out}`);
  return { ip: n.IPAddress, prefixLen: n.IPPrefixLen, mac: n.MacAddress.toLowerCase() };
}

/** Name of the interface inside a container that holds `ip`. */
export async function ifaceWithIp(h: LabHost, container: string, ip: string): Promise<string> {
  const out = await h.nsSh(container, 'ip', '-o', '-4', 'addr', 'show');
  for (const l of out.split('\n')) {
    const m = /^\d+:\s+(\S+)\s+inet\s+([\d.]+)\//.exec(l);
    if (m && m[2] === ip) return m[1]!.replace(/@.*$/, '');
  }
  throw new Error(`no interface with ${ip} in ${container} on ${h.name}:\n${out}`);
}

/** iputils ping from the network namespace of a process (a container's pid), bounded. */
export async function pingFromPid(pid: number, target: string, opts: { count?: number; timeout?: number; interval?: number } = {}): Promise<PingResult> {
  const count = opts.count ?? 1;
  const timeout = opts.timeout ?? 2;
  const r = await run('nsenter', ['-t', String(pid), '-n', '--', 'ping', '-n', '-c', String(count), '-i', String(opts.interval ?? 0.2),
    '-W', String(timeout), target], { timeoutMs: (count * (opts.interval ?? 0.2) + timeout) * 1000 + 10_000 });
  const output = r.stdout + r.stderr;
  return pingResult(r.code, output);
}

export interface EventualPing {
  ok: boolean;
  tries: number;
  elapsedMs: number;
  last: PingResult | undefined;
}

/**
 * Ping once (-c 1 -W 1) again and again until a reply comes or timeoutMs
 * passes. For "can reach eventually" after a container was just started
 * elsewhere; the number of tries says how long it took.
 */
export async function pingUntilOk(h: LabHost, container: string, target: string, timeoutMs = 15_000): Promise<EventualPing> {
  const pid = await h.containerPid(container);
  const t0 = Date.now();
  let tries = 0;
  let last: PingResult | undefined;
  for (;;) {
    tries++;
    last = await pingFromPid(pid, target, { count: 1, timeout: 1 });
    if (last.ok) return { ok: true, tries, elapsedMs: Date.now() - t0, last };
    if (Date.now() - t0 >= timeoutMs) return { ok: false, tries, elapsedMs: Date.now() - t0, last };
  }
}

/**
 * Assert what a user checks after starting a container elsewhere: `from`
 * reaches `ip` within `timeoutMs` (the other node learns the container
 * asynchronously), then 3 of 3 pings are answered.
 */
export async function assertReaches(t: Test, h: LabHost, from: string, ip: string, msg: string, timeoutMs = 15_000): Promise<void> {
  const e = await pingUntilOk(h, from, ip, timeoutMs);
  if (!t.ok(e.ok, `${msg}: reachable (after ${e.tries} tries, ${e.elapsedMs} ms)`, { output: e.last?.output })) return;
  const r = await h.ping(from, ip, { count: 3, interval: 0.1, timeout: 2 });
  t.ok(r.ok && r.received === 3, `${msg}: 3 of 3 pings answered`, { output: r.output });
}

/** Nearest-rank percentile (q in 0..1) of some numbers. */
export function percentile(values: number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const v = [...values].sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.max(0, Math.ceil(q * v.length) - 1))]!;
}

/** docker CLI result or a thrown CommandError, as text for assertion diagnostics. */
export function failureText(e: unknown): string {
  if (e instanceof CommandError) return `${e.result.cmd}\n${e.result.stderr}`;
  return e instanceof Error ? e.message : String(e);
}
