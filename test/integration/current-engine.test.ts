// What changed for remote network drivers between Docker 20.10 and 28
// (shared/docs/multi-host-lab.md, "Newer Docker engines"), each case checked
// the way a user would check it, across two hosts:
//
//   A. IPv6-only networks (`--ipv4=false --ipv6`, 28+: CreateNetwork with an
//      empty IPv4Data, CreateEndpoint with no Interface.Address): the network
//      is IPv6-only on both hosts, containers on h1 and h2 ping each other with
//      `ping -6`, have no IPv4 address on it, and find each other by name.
//      Skipped on 20.10 (no --ipv4=false there).
//   B. A dual-stack network for comparison: IPv4 and IPv6 across hosts.
//   C. Join ordering (28 moves the interface into the running container's
//      namespace right after Join returns): `docker network connect` of a
//      running container, disconnect, connect again; each time it has its
//      interface at once and reaches a peer on the other host.
//   D. External DNS (28's embedded DNS forwards to a resolver on the host's
//      loopback only for containers with external access): h2's dockerd reads
//      such a resolver from its /etc/resolv.conf (127.0.0.54 in h2's
//      namespace, as systemd-resolved would be; HostSpec.hostResolvers); a
//      container on a tsoverlay network resolves an outside name through it
//      (both engines), one on an --internal network does not (28+; 20.10
//      forwards for it too: skipped there, the observation is printed). h1
//      runs the README's setup (--dns 169.254.53.53): outside names, and
//      cross-host names on --internal.
//   E. IPAM calls of 27+ (GetDefaultAddressSpaces before every RequestPool,
//      repeated RequestPool): several networks created at once get distinct
//      pools, an overlapping request is refused cleanly, and nothing leaks (the
//      same subnets can be created again after removal).
//   F. ProgramExternalConnectivity with the newer engines' options: a
//      container with -p gets a second tsoverlay network connected, then is
//      restarted; it keeps its peers and its published port, and neither the
//      plugin nor dockerd logs an error for it.
//
// Runs on the default engine (20.10) and, in test/run-all.sh's
// NEW_ENGINE_TESTS, on Docker 28.5 (TSL_ENGINE_DIR). One lab: h1, h2 + one
// ZooKeeper server + the lab DNS server (the plugins' upstream).
// Needs root, TSOVERLAY_IT=1 and a built plugin (npm run build).
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import {
  endpointOf, inspectNet, LabDnsServer, run, subnetOf, waitFor, waitNetwork, waitNetworkGone,
  type LabHost, type NetInfo, type RunResult,
} from '../lab/index.js';
import { SKIP_REASON, integrationEnabled, labForFile } from '../lab/suite.js';

/** The plugins' resolver (README, "Names across nodes"): h1's dockerd --dns. */
const R = '169.254.53.53';
/**
 * A resolver on h2's loopback, as systemd-resolved would be, the only
 * nameserver of h2 dockerd's /etc/resolv.conf (not .53: dockerd reads
 * systemd-resolved's own file when it sees 127.0.0.53).
 */
const LOOPBACK_DNS = '127.0.0.54';
const OUTSIDE_NAME = 'outside.example';
const OUTSIDE_IP = LabDnsServer.DEFAULT_RECORDS[OUTSIDE_NAME]!;
const LOOPBACK_NAME = 'loopback.example';
const LOOPBACK_IP = '203.0.113.53';
const SPREAD_WAIT_MS = 30_000;
const HTTP_REQUEST = 'GET / HTTP/1.0\r\n\r\n';

if (!integrationEnabled()) {
  t.plan(0, SKIP_REASON);
} else {
  await main();
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const lab = await labForFile(t, {
    hosts: [{ name: 'h1', dockerDns: [R] }, { name: 'h2', hostResolvers: [LOOPBACK_DNS] }],
    zookeeper: { servers: 1, tickTimeMs: 500 },
    dnsServer: true,
    plugin: { store: 'zk', zkSessionTimeoutMs: 4000, dnsUpstream: 'lab' },
  }, { logLines: 150 });
  if (!lab) return;
  const [h1, h2] = [lab.host('h1'), lab.host('h2')];
  const hosts = [h1, h2];
  try {
    await Promise.all(hosts.map((h) => h.startPlugin()));
  } catch (e) {
    t.fail(`plugin did not start: ${e instanceof Error ? e.message : String(e)}`);
    return;
  }
  // the resolver on h2's loopback that its dockerd reads from /etc/resolv.conf
  let loopDns: LabDnsServer;
  try {
    loopDns = await LabDnsServer.start(h2.ns, LOOPBACK_DNS, {
      records: { [LOOPBACK_NAME]: LOOPBACK_IP, [OUTSIDE_NAME]: OUTSIDE_IP },
      state: lab.state, logPath: join(lab.dir, 'dns-loopback-h2.log'), label: `dns-loopback-${lab.id}`,
    });
  } catch (e) {
    t.fail(`loopback DNS server on h2 did not start: ${e instanceof Error ? e.message : String(e)}`);
    return;
  }
  h2.probes.add(loopDns.proc); // stopped with h2 by lab.destroy()
  const major = Number(/^(\d+)\./.exec(h1.engineVersion)?.[1] ?? 0);
  /** Docker 28+ (the run with TSL_ENGINE_DIR): the behaviour this file is about. */
  const modern = major >= 28;
  t.comment(`lab ${lab.id}: underlay ${lab.subnet}, store ${lab.zkStore}, dockerd ${h1.engineVersion}, up after ${Date.now() - t0} ms`);
  const engineDir = process.env['TSL_ENGINE_DIR'];
  if (engineDir) {
    const want = /^docker\.io (\d+\.\d+\.\d+)/m.exec(readFileSync(join(engineDir, 'VERSIONS'), 'utf8'))?.[1];
    t.ok(want && hosts.every((h) => h.engineVersion.startsWith(want)),
      `every host runs dockerd ${want} from ${engineDir} (${hosts.map((h) => h.engineVersion).join(', ')})`);
  }

  // ------------------------------------------------------------------ helpers

  /** Create on h1 (tsoverlay + its IPAM), wait for the replica on h2. */
  const makeNet = async (name: string, args: string[]) => {
    await h1.docker('network', 'create', '-d', 'tsoverlay', '--ipam-driver', 'tsoverlay', ...args, name);
    return waitNetwork(h2, name, SPREAD_WAIT_MS);
  };
  const makeOverlay = (name: string, subnet: string, ...args: string[]) => makeNet(name, ['--subnet', subnet, ...args]);
  /** docker network rm on h1 (the plugin removes it everywhere); on h2 too if it is still there (e.g. a replica gone astray). */
  const removeNet = async (name: string) => {
    await h1.dockerTry('network', 'rm', name);
    for (const h of hosts) {
      if (await waitNetworkGone(h, name, SPREAD_WAIT_MS).then(() => true, () => false)) continue;
      await h.dockerTry('network', 'rm', name);
      await waitNetworkGone(h, name, 5000).catch(() => undefined);
    }
  };
  type NetInfoV6 = NetInfo & { EnableIPv4?: boolean; EnableIPv6?: boolean };

  interface Eventually<T> { ok: boolean; value: T | undefined; ms: number }
  /** Probe until `until` holds or timeoutMs passes; never throws. */
  const eventually = async <T>(probe: () => Promise<T>, until: (v: T) => boolean, what: string, timeoutMs = 20_000): Promise<Eventually<T>> => {
    const s = Date.now();
    let value: T | undefined;
    try {
      await waitFor(async () => (value = await probe()), { what, until, timeoutMs, intervalMs: 200 });
      return { ok: true, value, ms: Date.now() - s };
    } catch {
      return { ok: false, value, ms: Date.now() - s };
    }
  };

  /** iputils ping (-4 or -6) from a container's namespace, one request. */
  const ping1 = (h: LabHost, c: string, ip: string, family: 4 | 6) =>
    h.nsExec(c, 'ping', `-${family}`, '-n', '-c', '1', '-W', '1', ip);
  /** Reachable within a bound (the other host learns a new endpoint asynchronously), then 3 of 3. */
  const reaches = async (t: Test, h: LabHost, c: string, ip: string, msg: string, family: 4 | 6 = 4) => {
    const e = await eventually(() => ping1(h, c, ip, family), (r) => r.code === 0, `${c} to reach ${ip}`, 20_000);
    if (!t.ok(e.ok, `${msg}: reachable (after ${e.ms} ms)`, { output: out(e.value) })) return false;
    const r = await h.nsExec(c, 'ping', `-${family}`, '-n', '-c', '3', '-i', '0.2', '-W', '2', ip);
    return t.ok(r.code === 0 && / 3 received/.test(r.stdout), `${msg}: 3 of 3 pings answered`, { output: out(r) });
  };
  const out = (r: RunResult | undefined) => (r ? `${r.stdout}${r.stderr}`.trim() : '(none)');

  interface Addr { iface: string; family: 'inet' | 'inet6'; cidr: string }
  /** Global addresses inside a container, per interface. */
  const addrsIn = async (h: LabHost, c: string): Promise<Addr[]> => {
    const o = await h.nsSh(c, 'ip', '-o', 'addr', 'show', 'scope', 'global');
    return o.split('\n').flatMap((l) => {
      const m = /^\d+:\s+(\S+)\s+(inet6?)\s+(\S+)/.exec(l);
      return m ? [{ iface: m[1]!.replace(/@.*$/, ''), family: m[2] as 'inet' | 'inet6', cidr: m[3]! }] : [];
    });
  };
  const ifaceOf = async (h: LabHost, c: string, ip: string) => (await addrsIn(h, c)).find((a) => a.cidr.split('/')[0] === ip)?.iface;
  const mtuOf = async (h: LabHost, c: string, iface: string) =>
    Number(/ mtu (\d+)/.exec(await h.nsSh(c, 'ip', '-o', 'link', 'show', 'dev', iface))?.[1] ?? 0);

  interface NetAttach { IPAddress: string; GlobalIPv6Address: string; EndpointID: string }
  const attachOf = async (h: LabHost, c: string, net: string): Promise<NetAttach | undefined> => {
    const nets = JSON.parse(await h.docker('container', 'inspect', '-f', '{{json .NetworkSettings.Networks}}', c)) as Record<string, NetAttach>;
    return nets[net];
  };

  interface PluginLine { level: number; time: number; msg: string; method?: string; status?: number; line: string }
  /** The plugin's log lines (pino JSON) since `since` (epoch ms). */
  const pluginLines = async (h: LabHost, since: number): Promise<PluginLine[]> => {
    const text = await readFile(h.pluginLog, 'utf8').catch(() => '');
    return text.split('\n').flatMap((line) => {
      if (!line.startsWith('{')) return [];
      try {
        const j = JSON.parse(line) as { level?: number; time?: number; msg?: string; method?: string; status?: number };
        if ((j.time ?? 0) < since) return [];
        return [{ level: j.level ?? 0, time: j.time ?? 0, msg: j.msg ?? '', ...(j.method ? { method: j.method } : {}), ...(j.status ? { status: j.status } : {}), line }];
      } catch {
        return [];
      }
    });
  };
  const calls = (lines: PluginLine[], method: string) => lines.filter((l) => l.msg === 'plugin call' && l.method === `/${method}`);
  const errorsIn = (lines: PluginLine[]) => lines.filter((l) => l.level >= 50).map((l) => l.line.slice(0, 600));
  /** dockerd log lines since `since` at level warning or error that mention `what`. */
  const dockerdProblems = async (h: LabHost, since: number, what: RegExp) => {
    const text = await readFile(h.dockerdLog, 'utf8').catch(() => '');
    return text.split('\n').filter((l) => {
      const ts = /^time="([^"]+)"/.exec(l)?.[1];
      return ts !== undefined && Date.parse(ts) >= since - 1000 && /level=(error|warning)/.test(l) && what.test(l);
    }).map((l) => l.slice(0, 600));
  };

  const nslookup = (h: LabHost, c: string, name: string, server?: string) =>
    h.dockerTry('exec', c, 'nslookup', name, ...(server ? [server] : []));
  const resolvesTo = (r: RunResult | undefined, ip: string) => r !== undefined && r.code === 0 && new RegExp(`Address:\\s+${ip.replace(/\./g, '\\.')}\\b`).test(r.stdout);

  // -------------------------------------------------------------------- tests

  const noV6Only = modern ? false : `dockerd ${h1.engineVersion} has no --ipv4=false (IPv6-only networks are Docker 28+)`;
  t.test('A. IPv6-only network (--ipv4=false --ipv6): IPv6 between hosts, no IPv4 on it', { timeout: 240_000, skip: noV6Only }, async (t) => {
    const NET = 'v6only';
    const SUBNET = 'fd00:5a::/64';
    const started = Date.now();
    t.teardown(async () => {
      for (const [h, c] of [[h1, 'v6a'], [h2, 'v6b']] as const) await h.removeContainer(c).catch(() => undefined);
      await removeNet(NET);
    });
    const created = await h1.dockerTry('network', 'create', '--ipv4=false', '--ipv6', '--subnet', SUBNET, '-d', 'tsoverlay', '--ipam-driver', 'tsoverlay', NET);
    if (!t.equal(created.code, 0, `docker network create --ipv4=false --ipv6 --subnet ${SUBNET} on h1`, { output: out(created) })) return;
    const on1: NetInfoV6 = await inspectNet(h1, NET);
    t.same([on1.EnableIPv4, on1.EnableIPv6, (on1.IPAM.Config ?? []).map((c) => c.Subnet)], [false, true, [SUBNET]], `h1: IPv6-only, subnet ${SUBNET}`);
    const on2: NetInfoV6 = await waitNetwork(h2, NET, SPREAD_WAIT_MS);
    const subnets2 = (on2.IPAM.Config ?? []).map((c) => c.Subnet);
    t.same([on2.EnableIPv4, on2.EnableIPv6, subnets2], [false, true, [SUBNET]],
      `h2 (replicated by the plugin): IPv6-only too, subnet ${SUBNET} only (EnableIPv4 ${on2.EnableIPv4}, subnets ${subnets2.join(', ')})`);
    const devs = await Promise.all(hosts.map((h) => h.tsLinks().then((l) => l.filter((d) => d.startsWith('tsvx-')))));
    t.same(devs[0], devs[1], `one overlay: the same VXLAN device on both hosts (h1 ${devs[0]!.join(',')}, h2 ${devs[1]!.join(',')})`);

    await h1.runSleeper('v6a', '--net', NET);
    await h2.runSleeper('v6b', '--net', NET);
    const a = await attachOf(h1, 'v6a', NET);
    const b = await attachOf(h2, 'v6b', NET);
    t.ok(a?.GlobalIPv6Address && b?.GlobalIPv6Address, `IPv6 addresses: v6a ${a?.GlobalIPv6Address} (h1), v6b ${b?.GlobalIPv6Address} (h2)`);
    for (const [h, c, at] of [[h1, 'v6a', a], [h2, 'v6b', b]] as const) {
      t.equal(at?.IPAddress, '', `${c}: docker inspect shows no IPv4 address on ${NET}`);
      const addrs = await addrsIn(h, c);
      const iface = addrs.find((x) => x.family === 'inet6' && x.cidr.startsWith(`${at?.GlobalIPv6Address ?? '-'}/`))?.iface;
      t.ok(iface, `${c}: interface ${iface} holds ${at?.GlobalIPv6Address}/64`, { addrs });
      t.same(addrs.filter((x) => x.iface === iface && x.family === 'inet').map((x) => x.cidr), [], `${c}: no IPv4 address on ${iface}`, { addrs });
    }
    if (!a?.GlobalIPv6Address || !b?.GlobalIPv6Address) return;
    await reaches(t, h1, 'v6a', b.GlobalIPv6Address, `ping -6 h1 v6a -> h2 v6b (${b.GlobalIPv6Address})`, 6);
    await reaches(t, h2, 'v6b', a.GlobalIPv6Address, `ping -6 h2 v6b -> h1 v6a (${a.GlobalIPv6Address})`, 6);
    // by name, as compose services would: busybox ping through Docker's embedded DNS (then the plugin's resolver)
    const byName = await eventually(() => h1.dockerTry('exec', 'v6a', 'ping', '-6', '-c', '1', '-W', '1', 'v6b'), (r) => r.code === 0, 'v6a to ping v6b by name', 15_000);
    // Known gap, reported as TODO (never as a pass): the node resolver listens on
    // IPv4 (169.254.53.53) and tells which network asks by the asker's IPv4
    // overlay address; an IPv6-only container has none, its query arrives
    // through docker_gwbridge and gets NXDOMAIN. Needs an IPv6 resolver address
    // or identifying the asker by its interface.
    t.ok(byName.ok, `h1 v6a pings h2's v6b by name over IPv6 (after ${byName.ms} ms)`, {
      output: out(byName.value),
      todo: 'names on IPv6-only networks: the resolver identifies the asker by its IPv4 overlay address',
    });
    const lines = await pluginLines(h1, started);
    t.same(errorsIn(lines), [], 'h1 plugin: no error logged');
    t.same(errorsIn(await pluginLines(h2, started)), [], 'h2 plugin: no error logged');
  });

  t.test('B. dual-stack network: IPv4 and IPv6 between hosts', { timeout: 240_000 }, async (t) => {
    const NET = 'dual';
    const V4 = '10.74.0.0/24';
    const V6 = 'fd00:5b::/64';
    t.teardown(async () => {
      for (const [h, c] of [[h1, 'dsa'], [h2, 'dsb']] as const) await h.removeContainer(c).catch(() => undefined);
      await removeNet(NET);
    });
    const on2: NetInfoV6 = await makeNet(NET, ['--ipv6', '--subnet', V4, '--subnet', V6]);
    t.same((on2.IPAM.Config ?? []).map((c) => c.Subnet).sort(), [V4, V6].sort(), `h2: both subnets (${V4}, ${V6})`);
    t.equal(on2.EnableIPv6, true, 'h2: IPv6 enabled');
    await h1.runSleeper('dsa', '--net', NET);
    await h2.runSleeper('dsb', '--net', NET);
    const a = await attachOf(h1, 'dsa', NET);
    const b = await attachOf(h2, 'dsb', NET);
    t.match(a?.IPAddress ?? '', /^10\.74\.0\./, `dsa (h1): ${a?.IPAddress}, ${a?.GlobalIPv6Address}`);
    t.match(b?.GlobalIPv6Address ?? '', /^fd00:5b::/, `dsb (h2): ${b?.IPAddress}, ${b?.GlobalIPv6Address}`);
    if (!a || !b) return;
    await reaches(t, h1, 'dsa', b.IPAddress, `h1 dsa -> h2 dsb over IPv4 (${b.IPAddress})`, 4);
    await reaches(t, h1, 'dsa', b.GlobalIPv6Address, `h1 dsa -> h2 dsb over IPv6 (${b.GlobalIPv6Address})`, 6);
    await reaches(t, h2, 'dsb', a.IPAddress, `h2 dsb -> h1 dsa over IPv4 (${a.IPAddress})`, 4);
    await reaches(t, h2, 'dsb', a.GlobalIPv6Address, `h2 dsb -> h1 dsa over IPv6 (${a.GlobalIPv6Address})`, 6);
    const ifA = await ifaceOf(h1, 'dsa', a.IPAddress);
    t.equal(await ifaceOf(h1, 'dsa', a.GlobalIPv6Address), ifA, `dsa: both addresses on one interface (${ifA})`);
  });

  t.test('C. docker network connect of a running container, disconnect, connect again: its interface at once, a peer on h2', { timeout: 240_000 }, async (t) => {
    const [J1, J2] = ['join1', 'join2'];
    t.teardown(async () => {
      await h1.removeContainer('jc').catch(() => undefined);
      for (const c of ['jp1', 'jp2']) await h2.removeContainer(c).catch(() => undefined);
      for (const n of [J1, J2]) await removeNet(n);
    });
    await makeOverlay(J1, '10.75.0.0/24');
    await makeOverlay(J2, '10.75.1.0/24');
    await h1.runSleeper('jc', '--net', J1);
    await h2.runSleeper('jp1', '--net', J1);
    await h2.runSleeper('jp2', '--net', J2);
    const p1 = await endpointOf(h2, 'jp1', J1);
    const p2 = await endpointOf(h2, 'jp2', J2);
    await reaches(t, h1, 'jc', p1.ip, `before: jc (h1) -> jp1 (h2) on ${J1}`);
    for (const round of [1, 2]) {
      const s = Date.now();
      const c = await h1.dockerTry('network', 'connect', J2, 'jc');
      if (!t.equal(c.code, 0, `round ${round}: docker network connect ${J2} jc (running) succeeds (${Date.now() - s} ms)`, { output: out(c) })) return;
      const ip = (await attachOf(h1, 'jc', J2))?.IPAddress ?? '';
      // Docker 28 moves the interface in right after Join: it must be there when connect returns
      const iface = await ifaceOf(h1, 'jc', ip);
      t.ok(iface, `round ${round}: jc has interface ${iface} with ${ip} as soon as connect returned`, { addrs: await addrsIn(h1, 'jc') });
      if (iface) t.equal(await mtuOf(h1, 'jc', iface), 1450, `round ${round}: ${iface} has MTU 1450`);
      await reaches(t, h1, 'jc', p2.ip, `round ${round}: jc -> jp2 (h2) on ${J2}`);
      await reaches(t, h2, 'jp2', ip, `round ${round}: jp2 (h2) -> jc on ${J2}`);
      await reaches(t, h1, 'jc', p1.ip, `round ${round}: jc still -> jp1 (h2) on ${J1}`);
      const d = await h1.dockerTry('network', 'disconnect', J2, 'jc');
      t.equal(d.code, 0, `round ${round}: docker network disconnect ${J2} jc`, { output: out(d) });
      t.notOk(await ifaceOf(h1, 'jc', ip), `round ${round}: the ${J2} interface left jc`);
      const gone = await ping1(h1, 'jc', p2.ip, 4);
      t.not(gone.code, 0, `round ${round}: jc no longer reaches jp2`, { output: out(gone) });
    }
    const own = (await h1.tsLinks()).filter((l) => /^ts[ch]/.test(l));
    t.comment(`endpoint devices left on h1: ${own.join(', ') || 'none besides jc\'s'}`);
  });

  t.test('D. external DNS through Docker\'s embedded DNS: tsoverlay network resolves, --internal does not', { timeout: 240_000 }, async (t) => {
    const [NET, INT] = ['dnsext', 'dnsint'];
    t.teardown(async () => {
      for (const c of ['de1', 'di1']) await h1.removeContainer(c).catch(() => undefined);
      for (const c of ['de2', 'di2']) await h2.removeContainer(c).catch(() => undefined);
      for (const n of [NET, INT]) await removeNet(n);
    });
    await makeOverlay(NET, '10.76.0.0/24');
    await makeOverlay(INT, '10.76.1.0/24', '--internal');
    await h1.runSleeper('de1', '--net', NET);
    await h1.runSleeper('di1', '--net', INT);
    await h2.runSleeper('de2', '--net', NET);
    await h2.runSleeper('di2', '--net', INT);

    // h2: dockerd without --dns, its /etc/resolv.conf names only a resolver on the host's loopback
    const before = (await loopDns.queries()).length;
    const ext2 = await eventually(() => nslookup(h2, 'de2', LOOPBACK_NAME), (r) => resolvesTo(r, LOOPBACK_IP), `de2 to resolve ${LOOPBACK_NAME}`, 10_000);
    const int2 = await nslookup(h2, 'di2', LOOPBACK_NAME);
    const seen = (await loopDns.queries()).slice(before).filter((q) => q.name === LOOPBACK_NAME);
    t.comment(`h2 (dockerd's resolv.conf: nameserver ${LOOPBACK_DNS}): de2 (${NET}) -> ${resolvesTo(ext2.value, LOOPBACK_IP) ? LOOPBACK_IP : out(ext2.value).split('\n').pop()}; ` +
      `di2 (${INT}, --internal) -> ${resolvesTo(int2, LOOPBACK_IP) ? LOOPBACK_IP : out(int2).split('\n').pop()}; the loopback resolver saw ${seen.length} queries for ${LOOPBACK_NAME}`);
    t.ok(ext2.ok, `h2 de2 on ${NET} (external access through docker_gwbridge) resolves ${LOOPBACK_NAME} -> ${LOOPBACK_IP} via 127.0.0.11 and the host's ${LOOPBACK_DNS} (after ${ext2.ms} ms)`, { output: out(ext2.value) });
    const noInternalForwarding = modern ? false
      : `dockerd ${h1.engineVersion} has no external-access rule: it forwards an --internal container's queries to the host's loopback resolver too (observed above)`;
    t.notOk(resolvesTo(int2, LOOPBACK_IP), `h2 di2 on ${INT} (--internal, no external access) does not resolve it`, { output: out(int2), skip: noInternalForwarding });
    t.not(int2.code, 0, 'nslookup in di2 fails', { output: out(int2), skip: noInternalForwarding });

    // h1: dockerd --dns 169.254.53.53, the plugin's resolver, reached on-link through the tsoverlay interface
    const ext1 = await eventually(() => nslookup(h1, 'de1', OUTSIDE_NAME), (r) => resolvesTo(r, OUTSIDE_IP), `de1 to resolve ${OUTSIDE_NAME}`, 15_000);
    t.ok(ext1.ok, `h1 de1 on ${NET} resolves ${OUTSIDE_NAME} -> ${OUTSIDE_IP} (127.0.0.11, then ${R}, then the lab upstream)`, { output: out(ext1.value) });
    const int1 = await nslookup(h1, 'di1', OUTSIDE_NAME);
    t.comment(`h1 (dockerd --dns ${R}): di1 on ${INT} (--internal) asking for ${OUTSIDE_NAME} -> ${resolvesTo(int1, OUTSIDE_IP) ? `${OUTSIDE_IP}: Docker forwards from the container's namespace to an on-link server, and tsoverlay's resolver forwards outside names for --internal networks too` : out(int1).split('\n').pop()}`);
    // names across hosts on --internal keep working on 28: the resolver is on-link, not host loopback
    const di2 = await endpointOf(h2, 'di2', INT);
    const cross = await eventually(() => nslookup(h1, 'di1', 'di2'), (r) => resolvesTo(r, di2.ip), 'di1 to resolve di2', 20_000);
    t.ok(cross.ok, `h1 di1 on ${INT} (--internal) resolves h2's di2 -> ${di2.ip} through 127.0.0.11 (after ${cross.ms} ms)`, { output: out(cross.value) });
  });

  t.test('E. several networks at once, an overlapping request refused, no pool leaked', { timeout: 300_000 }, async (t) => {
    const started = Date.now();
    const names = ['pa', 'pb', 'pc', 'pd'];
    t.teardown(async () => {
      for (const n of [...names, 'pover', 'pagain', 'pa2', 'pc2', 'pd2']) await removeNet(n);
    });
    const specs: Array<[string, string[]]> = [['pa', ['--subnet', '10.77.0.0/24']], ['pb', ['--subnet', '10.77.1.0/24']], ['pc', []], ['pd', []]];
    const made = await Promise.all(specs.map(([n, args]) => h1.dockerTry('network', 'create', '-d', 'tsoverlay', '--ipam-driver', 'tsoverlay', ...args, n)));
    made.forEach((r, i) => t.equal(r.code, 0, `${names[i]} created at the same time as the others`, { output: out(r) }));
    const subnets = new Map<string, string>();
    for (const n of names) {
      const info = await inspectNet(h1, n).catch(() => undefined);
      const s = info ? subnetOf(info) : undefined;
      if (s) subnets.set(n, s);
    }
    t.equal(new Set(subnets.values()).size, names.length, `four distinct subnets: ${[...subnets].map(([n, s]) => `${n} ${s}`).join(', ')}`);
    for (const n of names) {
      const on2 = await waitNetwork(h2, n, SPREAD_WAIT_MS).catch(() => undefined);
      t.equal(on2 ? subnetOf(on2) : undefined, subnets.get(n), `${n} on h2 with the same subnet`);
    }
    const over = await h1.dockerTry('network', 'create', '-d', 'tsoverlay', '--ipam-driver', 'tsoverlay', '--subnet', '10.77.0.128/25', 'pover');
    t.not(over.code, 0, 'an overlapping --subnet 10.77.0.128/25 (inside pa) is refused');
    t.match(over.stderr, /overlap/i, 'with a message saying it overlaps', { stderr: over.stderr });
    t.equal((await h1.dockerTry('network', 'inspect', 'pover')).code, 1, 'pover does not exist');
    const lines = await pluginLines(h1, started);
    const gdas = calls(lines, 'IpamDriver.GetDefaultAddressSpaces').length;
    const pools = calls(lines, 'IpamDriver.RequestPool');
    const refused = pools.filter((l) => l.status !== 200);
    t.comment(`h1 plugin: ${pools.length} RequestPool (${refused.length} refused, status ${[...new Set(refused.map((l) => l.status))].join(',') || '-'}), ${gdas} GetDefaultAddressSpaces, ${calls(lines, 'IpamDriver.ReleasePool').length} ReleasePool`);
    if (modern) t.ok(gdas >= pools.length, `Docker ${major} asks GetDefaultAddressSpaces before every RequestPool (${gdas} >= ${pools.length}), each answered`);
    // tsoverlay answers a refusal with 500 + {"Err": reason} and logs it as a warning, never as an unexpected error
    const refusals = lines.filter((l) => l.msg === 'request refused' && l.line.includes('IpamDriver.RequestPool'));
    t.ok(refused.length >= 1 && refusals.some((l) => /overlaps/.test(l.line)) && !lines.some((l) => l.msg === 'unexpected error'),
      'the overlapping RequestPool was refused as such ("request refused", naming the overlap), not an unexpected error', { refused: refusals.map((l) => l.line) });
    t.same(errorsIn(lines), [], 'h1 plugin: no error logged');

    for (const n of names) await removeNet(n);
    t.pass('all four removed everywhere');
    // nothing held: the refused subnet, then the others, can be created again
    const again = await h1.dockerTry('network', 'create', '-d', 'tsoverlay', '--ipam-driver', 'tsoverlay', '--subnet', '10.77.0.128/25', 'pagain');
    t.equal(again.code, 0, 'the once-refused 10.77.0.128/25 can be created now (pa\'s pool was released, the refused request held none)', { output: out(again) });
    await removeNet('pagain');
    for (const [n, s] of [['pa2', subnets.get('pa')], ['pc2', subnets.get('pc')], ['pd2', subnets.get('pd')]] as const) {
      if (!s) continue;
      const r = await h1.dockerTry('network', 'create', '-d', 'tsoverlay', '--ipam-driver', 'tsoverlay', '--subnet', s, n);
      t.equal(r.code, 0, `${s} (first held by ${n.replace('2', '')}) can be created again as ${n}`, { output: out(r) });
    }
    for (const n of ['pa2', 'pc2', 'pd2']) await removeNet(n);
    t.same(errorsIn(await pluginLines(h1, started)), [], 'h1 plugin: still no error logged');
    t.same(errorsIn(await pluginLines(h2, started)), [], 'h2 plugin: no error logged');
  });

  t.test('F. -p container: a second network connected, then restarted; peers and published port stay, no error logged', { timeout: 300_000 }, async (t) => {
    const [X1, X2] = ['ext1', 'ext2'];
    const BODY = `hello from xweb ${lab.id}`;
    t.teardown(async () => {
      await h1.removeContainer('xweb').catch(() => undefined);
      for (const c of ['xp1', 'xp2']) await h2.removeContainer(c).catch(() => undefined);
      for (const n of [X1, X2]) await removeNet(n);
    });
    await makeOverlay(X1, '10.78.0.0/24');
    await makeOverlay(X2, '10.78.1.0/24');
    await h2.runSleeper('xp1', '--net', X1);
    await h2.runSleeper('xp2', '--net', X2);
    const p1 = await endpointOf(h2, 'xp1', X1);
    const p2 = await endpointOf(h2, 'xp2', X2);
    const started = Date.now();
    await h1.docker('run', '-d', '--name', 'xweb', '-p', '8080:80', '--net', X1, 'busybox:local',
      'sh', '-c', `mkdir -p /www && echo '${BODY}' > /www/index.html && trap 'exit 0' TERM INT; httpd -f -p 80 -h /www & wait`);
    const fromSwitch = () => run('nsenter', [`--net=/run/netns/${lab.switchNs}`, '--', 'busybox', 'nc', '-w', '3', h1.ip, '8080'], { input: HTTP_REQUEST, timeoutMs: 15_000 });
    const published = async (step: string) => {
      const r = await eventually(fromSwitch, (x) => x.stdout.includes(BODY), `GET http://${h1.ip}:8080/ (${step})`, 30_000);
      t.ok(r.ok, `${step}: the published port answers from the switch (GET http://${h1.ip}:8080/, after ${r.ms} ms)`, { output: out(r.value) });
    };
    await published('started with -p 8080:80 on ext1');
    await reaches(t, h1, 'xweb', p1.ip, `started: xweb -> xp1 (h2) on ${X1}`);

    const c = await h1.dockerTry('network', 'connect', X2, 'xweb');
    t.equal(c.code, 0, `docker network connect ${X2} xweb`, { output: out(c) });
    await reaches(t, h1, 'xweb', p2.ip, `connected: xweb -> xp2 (h2) on ${X2}`);
    await reaches(t, h1, 'xweb', p1.ip, `connected: xweb still -> xp1 (h2) on ${X1}`);
    await published(`after connecting ${X2}`);

    const r = await h1.dockerTry('restart', '-t', '2', 'xweb');
    t.equal(r.code, 0, 'docker restart xweb', { output: out(r) });
    await reaches(t, h1, 'xweb', p1.ip, `restarted: xweb -> xp1 (h2) on ${X1}`);
    await reaches(t, h1, 'xweb', p2.ip, `restarted: xweb -> xp2 (h2) on ${X2}`);
    await published('after the restart');
    const ip2 = (await attachOf(h1, 'xweb', X2))?.IPAddress ?? '';
    await reaches(t, h2, 'xp2', ip2, `restarted: xp2 (h2) -> xweb (${ip2})`);

    const lines = await pluginLines(h1, started);
    const pec = calls(lines, 'NetworkDriver.ProgramExternalConnectivity');
    const rec = calls(lines, 'NetworkDriver.RevokeExternalConnectivity');
    t.comment(`h1 plugin got ${pec.length} ProgramExternalConnectivity and ${rec.length} RevokeExternalConnectivity calls (statuses ${[...new Set([...pec, ...rec].map((l) => l.status))].join(',') || '-'}); ` +
      'tsoverlay returns no Gateway, so docker_gwbridge is the gateway endpoint');
    t.same([...pec, ...rec].filter((l) => l.status !== 200).map((l) => l.line), [], 'every (Program|Revoke)ExternalConnectivity that reached the plugin answered 200');
    t.same(lines.filter((l) => l.msg === 'plugin call' && l.status !== 200).map((l) => l.line), [], 'no plugin call was refused meanwhile');
    t.same(errorsIn(lines), [], 'h1 plugin: no error logged');
    t.same(await dockerdProblems(h1, started, /ExternalConnectivity|tsoverlay/i), [], 'h1 dockerd: no warning or error about external connectivity or tsoverlay');
  });

  t.test('the plugins are still alive', async (t) => {
    for (const h of hosts) t.ok(h.plugin?.running, `${h.name}: plugin running`, { exit: h.plugin?.exit });
    t.comment(`whole file: ${Math.round((Date.now() - t0) / 1000)} s`);
  });
}
