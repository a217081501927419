// tsoverlay on one Docker host, end to end: a real dockerd in a lab namespace
// talks to the real plugin process over its socket, and we check what a user
// would check (docker CLI output, interfaces and routes inside containers,
// pings, devices on the host). One lab for the whole file: host h1 on a 1500
// MTU underlay, host jumbo on a 9000 MTU underlay.
// Needs root, TSOVERLAY_IT=1 and a built plugin (npm run build).
import t, { type Test } from 'tap';
import { existsSync } from 'node:fs';
import { BUSYBOX_IMAGE, SLEEPER, waitFor, type LabHost, type PingResult, type RunResult } from '../lab/index.js';
import { SKIP_REASON, integrationEnabled, labForFile } from '../lab/suite.js';

const DRIVER = 'tsoverlay';

if (!integrationEnabled()) {
  t.plan(0, SKIP_REASON);
} else {
  await main();
}

async function main(): Promise<void> {
  const lab = await labForFile(t, { hosts: [{ name: 'h1', mtu: 1500 }, { name: 'jumbo', mtu: 9000 }] }, { logLines: 80 });
  if (!lab) return;
  const h1 = lab.host('h1');
  const jumbo = lab.host('jumbo');
  try {
    await Promise.all([h1.startPlugin(), jumbo.startPlugin()]);
  } catch (e) {
    // without a plugin every docker call below would wait for dockerd's 15 s lookup retries
    t.fail(`plugin did not start: ${e instanceof Error ? e.message : String(e)}`);
    return;
  }

  // ------------------------------------------------------------------ helpers

  const createNet = (h: LabHost, name: string, ...args: string[]) =>
    h.docker('network', 'create', '-d', DRIVER, '--ipam-driver', DRIVER, ...args, name);

  const createNetTry = (h: LabHost, name: string, ...args: string[]) =>
    h.dockerTry('network', 'create', '-d', DRIVER, '--ipam-driver', DRIVER, ...args, name);

  /** Create the network unless an earlier subtest already did. */
  const ensureNet = async (h: LabHost, name: string, ...args: string[]) => {
    if ((await h.dockerTry('network', 'inspect', name)).code !== 0) await createNet(h, name, ...args);
  };

  interface NetInfo {
    Name: string;
    Id: string;
    Driver: string;
    Internal: boolean;
    IPAM: { Driver: string; Config: Array<{ Subnet?: string; Gateway?: string }> | null };
    Containers: Record<string, { Name: string; IPv4Address: string }>;
    Options: Record<string, string>;
  }
  const inspectNet = async (h: LabHost, name: string): Promise<NetInfo> => {
    const arr = JSON.parse(await h.docker('network', 'inspect', name)) as NetInfo[];
    if (!arr[0]) throw new Error(`no network ${name}`);
    return arr[0];
  };

  const networkNames = async (h: LabHost) =>
    (await h.docker('network', 'ls', '--format', '{{.Name}}')).split('\n').filter(Boolean).sort();

  /** IPv4 address (CIDR) of a container on a network, from docker inspect. */
  const ipOn = async (h: LabHost, container: string, net: string): Promise<string> => {
    const out = await h.docker('container', 'inspect', '-f', `{{json .NetworkSettings.Networks}}`, container);
    const nets = JSON.parse(out) as Record<string, { IPAddress: string; IPPrefixLen: number }>;
    const n = nets[net];
    if (!n?.IPAddress) throw new Error(`${container} has no address on ${net}: ${out}`);
    return n.IPAddress;
  };

  interface Iface { name: string; mtu: number; addrs: string[] }
  /** Interfaces inside a container, read through netlink in its netns. */
  const ifaces = async (h: LabHost, container: string): Promise<Iface[]> => {
    const links = await h.nsSh(container, 'ip', '-o', 'link', 'show');
    const addrs = await h.nsSh(container, 'ip', '-o', '-4', 'addr', 'show');
    const res: Iface[] = [];
    for (const l of links.split('\n')) {
      const m = /^\d+:\s+([^:@\s]+)(?:@\S+)?:\s.*\smtu (\d+)/.exec(l);
      if (m) res.push({ name: m[1]!, mtu: Number(m[2]), addrs: [] });
    }
    for (const l of addrs.split('\n')) {
      const m = /^\d+:\s+(\S+)\s+inet\s+(\S+)/.exec(l);
      const i = m && res.find((x) => x.name === m[1]);
      if (i) i.addrs.push(m[2]!);
    }
    return res;
  };
  const ifaceWithAddr = async (h: LabHost, container: string, ip: string) =>
    (await ifaces(h, container)).find((i) => i.addrs.some((a) => a.split('/')[0] === ip));

  const defaultRoute = async (h: LabHost, container: string) =>
    (await h.nsSh(container, 'ip', '-4', 'route', 'show', 'default')).trim();

  const run = (h: LabHost, name: string, ...args: string[]) => h.runSleeper(name, ...args);

  /** Assert a ping got through; if not, show the host's FORWARD chain too (policy drops are a classic). */
  const pingOk = async (t: Test, h: LabHost, r: PingResult, msg: string) => {
    const ok = r.ok && r.received > 0;
    const extra: Record<string, unknown> = { output: r.output };
    if (!ok) {
      const fw = await h.hostExec('iptables', '-L', 'FORWARD', '-v', '-n', '-x');
      extra['hostForwardChain'] = fw.stdout.split('\n').slice(0, 4).join('\n');
    }
    return t.ok(ok, msg, extra);
  };
  const pingFails = (t: Test, r: PingResult, msg: string) =>
    t.equal(r.received, 0, msg, { output: r.output });
  const refused = (t: Test, r: RunResult, pattern: RegExp, msg: string) => {
    t.not(r.code, 0, `${msg}: command fails`, { stdout: r.stdout });
    t.match(r.stderr, pattern, `${msg}: error says ${pattern}`, { stderr: r.stderr });
  };

  // -------------------------------------------------------------------- tests

  t.test('network create with --subnet and without', { timeout: 180_000 }, async (t) => {
    await createNet(h1, 'n1', '--subnet', '10.20.0.0/24');
    const n1 = await inspectNet(h1, 'n1');
    t.equal(n1.Driver, DRIVER, 'driver');
    t.equal(n1.IPAM.Driver, DRIVER, 'IPAM driver');
    t.equal(n1.IPAM.Config?.[0]?.Subnet, '10.20.0.0/24', 'subnet as requested');

    await createNet(h1, 'nauto');
    const auto = await inspectNet(h1, 'nauto');
    const subnet = auto.IPAM.Config?.[0]?.Subnet ?? '';
    t.match(subnet, /^\d+\.\d+\.\d+\.\d+\/\d+$/, `network without --subnet got a subnet (${subnet})`);
    t.not(subnet, '10.20.0.0/24', 'and not the one already taken');
    // containers on it get an address from that subnet
    await run(h1, 'cauto', '--net', 'nauto');
    const ip = await ipOn(h1, 'cauto', 'nauto');
    t.ok(ip, `container on nauto got ${ip}`);
    await h1.docker('rm', '-f', 'cauto');
    await h1.docker('network', 'rm', 'nauto');
  });

  t.test('two containers ping each other by IP and by name', { timeout: 180_000 }, async (t) => {
    await ensureNet(h1, 'n1', '--subnet', '10.20.0.0/24');
    await run(h1, 'c1', '--net', 'n1');
    await run(h1, 'c2', '--net', 'n1');
    const ip1 = await ipOn(h1, 'c1', 'n1');
    const ip2 = await ipOn(h1, 'c2', 'n1');
    t.match(ip1, /^10\.20\.0\./, `c1 in 10.20.0.0/24 (${ip1})`);
    t.match(ip2, /^10\.20\.0\./, `c2 in 10.20.0.0/24 (${ip2})`);
    await pingOk(t, h1, await h1.ping('c1', ip2), 'c1 -> c2 by IP');
    await pingOk(t, h1, await h1.ping('c2', ip1), 'c2 -> c1 by IP');
    await pingOk(t, h1, await h1.ping('c1', 'c2', { viaDockerExec: true, count: 2 }), 'c1 -> c2 by name');
    await pingOk(t, h1, await h1.ping('c2', 'c1', { viaDockerExec: true, count: 2 }), 'c2 -> c1 by name');
  });

  t.test('--ip is honoured', { timeout: 180_000 }, async (t) => {
    await ensureNet(h1, 'n1', '--subnet', '10.20.0.0/24');
    await run(h1, 'c3', '--net', 'n1', '--ip', '10.20.0.50');
    const i = await ifaceWithAddr(h1, 'c3', '10.20.0.50');
    t.ok(i, 'ip addr inside c3 shows 10.20.0.50', { ifaces: await ifaces(h1, 'c3') });
    t.ok(i?.addrs.includes('10.20.0.50/24'), 'with the network prefix /24');
    t.equal(await ipOn(h1, 'c3', 'n1'), '10.20.0.50', 'docker inspect agrees');
    if ((await h1.dockerTry('container', 'inspect', 'c1')).code === 0) {
      await pingOk(t, h1, await h1.ping('c1', '10.20.0.50'), 'c1 -> 10.20.0.50');
    }
    // the address is taken now
    const dup = await h1.dockerTry('run', '-d', '--name', 'c3dup', '--net', 'n1', '--ip', '10.20.0.50', BUSYBOX_IMAGE, ...SLEEPER);
    t.not(dup.code, 0, 'a second container cannot take 10.20.0.50', { stderr: dup.stderr });
    await h1.removeContainer('c3dup');
  });

  t.test('docker network connect / disconnect a running container', { timeout: 180_000 }, async (t) => {
    await ensureNet(h1, 'n1', '--subnet', '10.20.0.0/24');
    await createNet(h1, 'n2', '--subnet', '10.20.2.0/24');
    await run(h1, 'cc', '--net', 'n1');
    await run(h1, 'c4', '--net', 'n2');
    const ip4 = await ipOn(h1, 'c4', 'n2');
    const before = await ifaces(h1, 'cc');
    t.notOk(before.some((i) => i.addrs.some((a) => a.startsWith('10.20.2.'))), 'cc has no n2 interface yet');

    await h1.docker('network', 'connect', 'n2', 'cc');
    const ipcc = await ipOn(h1, 'cc', 'n2');
    const added = await waitFor(() => ifaceWithAddr(h1, 'cc', ipcc), { what: `interface with ${ipcc} in cc`, timeoutMs: 10_000 });
    t.ok(added, `interface ${added?.name} with ${ipcc} appeared in cc`);
    t.equal(added?.mtu, 1450, 'its MTU is 1450 too');
    await pingOk(t, h1, await h1.ping('cc', ip4), 'cc -> c4 over n2');
    await pingOk(t, h1, await h1.ping('c4', ipcc), 'c4 -> cc over n2');
    await pingOk(t, h1, await h1.ping('c4', 'cc', { viaDockerExec: true, count: 2 }), 'c4 -> cc by name');

    await h1.docker('network', 'disconnect', 'n2', 'cc');
    await waitFor(async () => !(await ifaces(h1, 'cc')).some((i) => i.addrs.some((a) => a.startsWith('10.20.2.'))), {
      what: 'n2 interface to leave cc', timeoutMs: 10_000,
    });
    t.pass('n2 interface gone from cc');
    pingFails(t, await h1.ping('cc', ip4, { count: 2, timeout: 1 }), 'cc can no longer reach c4');
    const n1ip = await ipOn(h1, 'cc', 'n1');
    t.match(n1ip, /^10\.20\.0\./, 'cc keeps its n1 address');
    const stillThere = await ifaceWithAddr(h1, 'cc', n1ip);
    t.ok(stillThere, 'and its n1 interface');
    // connect again: works a second time
    await h1.docker('network', 'connect', 'n2', 'cc');
    await pingOk(t, h1, await h1.ping('cc', ip4), 'reconnected cc -> c4');
    await h1.docker('network', 'disconnect', 'n2', 'cc');
  });

  t.test('--internal network has no way out; a normal network has', { timeout: 180_000 }, async (t) => {
    await ensureNet(h1, 'n1', '--subnet', '10.20.0.0/24');
    await createNet(h1, 'nint', '--internal', '--subnet', '10.20.3.0/24');
    t.equal((await inspectNet(h1, 'nint')).Internal, true, 'docker shows it as internal');
    await run(h1, 'ci1', '--net', 'nint');
    await run(h1, 'ci2', '--net', 'nint');
    t.equal(await defaultRoute(h1, 'ci1'), '', 'no default route in a container on the internal network');
    pingFails(t, await h1.ping('ci1', lab.outsideIp, { count: 2, timeout: 1 }), `ci1 cannot reach the outside ${lab.outsideIp}`);
    t.equal((await ifaces(h1, 'ci1')).filter((i) => i.name !== 'lo').length, 1, 'one interface only (no docker_gwbridge leg)');
    await pingOk(t, h1, await h1.ping('ci1', await ipOn(h1, 'ci2', 'nint')), 'but ci1 -> ci2 inside the network works');

    await run(h1, 'cout', '--net', 'n1');
    const def = await defaultRoute(h1, 'cout');
    t.match(def, /^default via /, `normal network: default route (${def})`);
    await pingOk(t, h1, await h1.ping('cout', lab.outsideIp), `normal network: cout reaches the outside ${lab.outsideIp}`);
  });

  t.test('MTU', { timeout: 180_000 }, async (t) => {
    await ensureNet(h1, 'n1', '--subnet', '10.20.0.0/24');
    await run(h1, 'cm1', '--net', 'n1');
    const e1 = await ifaceWithAddr(h1, 'cm1', await ipOn(h1, 'cm1', 'n1'));
    t.equal(e1?.mtu, 1450, '1450 on a 1500 underlay');

    await createNet(jumbo, 'nj', '--subnet', '10.21.0.0/24');
    await run(jumbo, 'cj1', '--net', 'nj');
    await run(jumbo, 'cj2', '--net', 'nj');
    const j2 = await ipOn(jumbo, 'cj2', 'nj');
    const ej = await ifaceWithAddr(jumbo, 'cj1', await ipOn(jumbo, 'cj1', 'nj'));
    t.equal(ej?.mtu, 8950, '8950 on a 9000 underlay');
    // a full-size unfragmented packet passes: 8950 - 20 (IP) - 8 (ICMP)
    await pingOk(t, jumbo, await jumbo.ping('cj1', j2, { size: 8922, dontFragment: true, count: 2 }), 'DF ping of 8950 bytes cj1 -> cj2');

    await createNet(h1, 'n1400', '--subnet', '10.20.14.0/24', '-o', 'com.docker.network.driver.mtu=1400');
    await run(h1, 'cm14', '--net', 'n1400');
    const e14 = await ifaceWithAddr(h1, 'cm14', await ipOn(h1, 'cm14', 'n1400'));
    t.equal(e14?.mtu, 1400, '-o com.docker.network.driver.mtu=1400 gives 1400');

    const big = await createNetTry(h1, 'n1600', '--subnet', '10.20.16.0/24', '-o', 'com.docker.network.driver.mtu=1600');
    refused(t, big, /max/i, 'mtu 1600 on a 1500 underlay');
    t.match(big.stderr, /1450/, 'the error names the maximum, 1450', { stderr: big.stderr });
    t.notOk((await networkNames(h1)).includes('n1600'), 'n1600 not created');
  });

  t.test('a tsoverlay network without --ipam-driver tsoverlay is refused', { timeout: 180_000 }, async (t) => {
    const r = await h1.dockerTry('network', 'create', '-d', DRIVER, '--subnet', '10.20.30.0/24', 'nnoipam');
    refused(t, r, /--ipam-driver tsoverlay/, 'without --ipam-driver');
    t.notOk((await networkNames(h1)).includes('nnoipam'), 'network not created');
    const r2 = await h1.dockerTry('network', 'create', '-d', DRIVER, 'nnoipam2');
    refused(t, r2, /--ipam-driver tsoverlay/, 'without --ipam-driver and --subnet');
    t.notOk((await networkNames(h1)).includes('nnoipam2'), 'network not created');
  });

  t.test('overlapping --subnet is refused', { timeout: 180_000 }, async (t) => {
    await ensureNet(h1, 'n1', '--subnet', '10.20.0.0/24');
    const same = await createNetTry(h1, 'nov1', '--subnet', '10.20.0.0/24');
    refused(t, same, /overlap/i, 'the same subnet again');
    t.match(same.stderr, /10\.20\.0\.0\/24/, 'the error names the subnet in use', { stderr: same.stderr });
    const inner = await createNetTry(h1, 'nov2', '--subnet', '10.20.0.128/25');
    refused(t, inner, /overlap/i, 'a subnet inside it');
    const outer = await createNetTry(h1, 'nov3', '--subnet', '10.20.0.0/16');
    refused(t, outer, /overlap/i, 'a subnet around it');
    const names = await networkNames(h1);
    t.notOk(names.some((n) => n.startsWith('nov')), 'none of them was created', { names });
    // n1 is unharmed
    t.equal((await inspectNet(h1, 'n1')).IPAM.Config?.[0]?.Subnet, '10.20.0.0/24', 'n1 unchanged');
  });

  t.test('garbage sent straight to the plugin socket is refused and changes nothing', { timeout: 180_000 }, async (t) => {
    await ensureNet(h1, 'n1', '--subnet', '10.20.0.0/24');
    const snapshot = async () => ({
      store: await h1.readStore(),
      networks: await h1.docker('network', 'ls', '--no-trunc', '--format', '{{.ID}} {{.Name}} {{.Driver}}'),
      links: (await h1.links()).sort(),
    });
    const before = await snapshot();
    const cases: Array<[string, string, string | undefined]> = [
      ['invalid JSON', '/NetworkDriver.CreateNetwork', '{"NetworkID": "abc",'],
      ['not JSON at all', '/NetworkDriver.CreateNetwork', 'hello there'],
      ['empty body', '/NetworkDriver.CreateNetwork', undefined],
      ['JSON null', '/NetworkDriver.CreateNetwork', 'null'],
      ['JSON array', '/NetworkDriver.CreateNetwork', '[1,2,3]'],
      ['JSON number', '/NetworkDriver.CreateNetwork', '42'],
      ['empty object', '/NetworkDriver.CreateNetwork', '{}'],
      ['missing IPv4Data', '/NetworkDriver.CreateNetwork', JSON.stringify({ NetworkID: 'a'.repeat(64), Options: {} })],
      ['wrong types', '/NetworkDriver.CreateNetwork',
        JSON.stringify({ NetworkID: 42, Options: 'x', IPv4Data: 'nope', IPv6Data: 7 })],
      ['wrong types inside IPv4Data', '/NetworkDriver.CreateNetwork',
        JSON.stringify({ NetworkID: 'b'.repeat(64), Options: {}, IPv4Data: [{ AddressSpace: 1, Pool: ['x'], Gateway: {} }], IPv6Data: [] })],
      ['bad pool CIDR', '/NetworkDriver.CreateNetwork',
        JSON.stringify({ NetworkID: 'c'.repeat(64), Options: {}, IPv4Data: [{ AddressSpace: 'tsoverlay-local', Pool: '10.999.0.0/99', Gateway: '10.999.0.1/99' }], IPv6Data: [] })],
      ['CreateEndpoint invalid JSON', '/NetworkDriver.CreateEndpoint', '{'],
      ['Join empty object', '/NetworkDriver.Join', '{}'],
      ['RequestPool wrong types', '/IpamDriver.RequestPool', JSON.stringify({ AddressSpace: 5, Pool: true })],
      ['RequestAddress not JSON', '/IpamDriver.RequestAddress', 'garbage'],
    ];
    for (const [what, path, body] of cases) {
      const r = await h1.pluginRequest(path, body);
      t.not(r.status, 200, `${what}: non-200 (${r.status})`, { body: r.text });
      const err = (r.json as { Err?: unknown } | undefined)?.Err;
      t.ok(typeof err === 'string' && err.length > 0, `${what}: JSON {"Err": "..."}`, { body: r.text });
    }
    const unknown = await h1.pluginRequest('/NetworkDriver.NoSuchMethod', '{}');
    t.equal(unknown.status, 404, 'unknown path: 404', { body: unknown.text });
    const unknown2 = await h1.pluginRequest('/nothing/here', undefined);
    t.equal(unknown2.status, 404, 'another unknown path: 404', { body: unknown2.text });

    t.ok(h1.plugin?.running, 'plugin still running');
    t.equal((await h1.pluginRequest('/Plugin.Activate')).status, 200, 'and answering');
    const after = await snapshot();
    t.equal(after.store, before.store, 'store file unchanged');
    t.equal(after.networks, before.networks, 'network list unchanged');
    t.same(after.links, before.links, 'devices unchanged');
    // and docker still works with it
    await run(h1, 'cg', '--net', 'n1');
    t.ok(await ipOn(h1, 'cg', 'n1'), 'a new container still attaches');
  });

  t.test('plugin restart during a continuous ping loses no packets', { timeout: 180_000 }, async (t) => {
    await createNet(h1, 'nr', '--subnet', '10.20.4.0/24');
    await run(h1, 'cp1', '--net', 'nr');
    await run(h1, 'cp2', '--net', 'nr');
    const ip2 = await ipOn(h1, 'cp2', 'nr');
    const stream = await h1.pingStream('cp1', ip2, { interval: 0.02 });
    try {
      await stream.waitReplies(25, 10_000);

      const stopped = await h1.stopPlugin();
      t.equal(stopped?.code, 0, `plugin exits 0 on SIGTERM (took ${stopped?.elapsedMs} ms)`, { stopped });
      t.notOk(existsSync(h1.pluginSocket), 'socket removed on SIGTERM');
      t.ok(stream.proc.running, 'ping still running while the plugin is down');
      const seenDown = stream.replies;
      await h1.startPlugin();
      const seenUp = stream.replies;
      await stream.waitReplies(seenUp + 50, 10_000);
      const r = await stream.stop();
      t.comment(`ping: ${r.transmitted} sent, ${r.received} received (${seenUp - seenDown} while the plugin restarted)`);
      t.ok(r.transmitted > 75, 'ping ran across the restart', { output: r.output.slice(-500) });
      t.equal(r.lossPercent, 0, '0% packet loss', { output: r.output.slice(-500) });
      t.equal(r.received, r.transmitted, 'received == transmitted');
    } finally {
      if (stream.proc.running) await stream.stop();
      if (!h1.plugin?.running) await h1.startPlugin();
    }

    // the restarted plugin knows the network: new containers attach and talk
    await run(h1, 'cp3', '--net', 'nr');
    await pingOk(t, h1, await h1.ping('cp3', ip2), 'new container after restart -> cp2');
    await h1.docker('rm', '-f', 'cp3');
  });

  t.test('plugin killed (SIGKILL) and started again: stale socket is handled', { timeout: 180_000 }, async (t) => {
    await ensureNet(h1, 'nr', '--subnet', '10.20.4.0/24');
    await h1.killPlugin();
    t.ok(existsSync(h1.pluginSocket), 'a killed plugin leaves its socket file');
    await h1.startPlugin();
    await run(h1, 'ck1', '--net', 'nr');
    await pingOk(t, h1, await h1.ping('ck1', await ipOn(h1, 'cp2', 'nr')), 'attach after the crash works');
  });

  t.test('dockerd restart (plugin left running) keeps the network usable', { timeout: 180_000 }, async (t) => {
    await createNet(h1, 'nd', '--subnet', '10.20.5.0/24');
    await h1.docker('run', '-d', '--name', 'cold', '--restart', 'always', '--net', 'nd', BUSYBOX_IMAGE, ...SLEEPER);
    await h1.restartDockerd();
    await waitFor(() => h1.docker('container', 'inspect', '-f', '{{.State.Running}}', 'cold').then((s) => s.trim()), {
      what: 'cold (--restart always) to run again', until: (s) => s === 'true', timeoutMs: 60_000,
    });
    t.pass('restart-always container came back on nd');
    const net = await inspectNet(h1, 'nd');
    t.equal(net.IPAM.Config?.[0]?.Subnet, '10.20.5.0/24', 'network still there');
    await run(h1, 'cnew', '--net', 'nd');
    const ipOld = await ipOn(h1, 'cold', 'nd');
    await pingOk(t, h1, await h1.ping('cnew', ipOld), `new container -> old one (${ipOld})`);
    await pingOk(t, h1, await h1.ping('cnew', 'cold', { viaDockerExec: true, count: 2 }), 'by name');
  });

  t.test('dockerd and plugin both restarted (dockerd stopped first, plugin started first)', { timeout: 180_000 }, async (t) => {
    await ensureNet(h1, 'nd', '--subnet', '10.20.5.0/24');
    await h1.stopDockerd();
    await h1.stopPlugin();
    await h1.startPlugin();
    await h1.startDockerd();
    if ((await h1.dockerTry('container', 'inspect', 'cold')).code === 0) {
      await waitFor(() => h1.docker('container', 'inspect', '-f', '{{.State.Running}}', 'cold').then((s) => s.trim()), {
        what: 'cold (--restart always) to run again', until: (s) => s === 'true', timeoutMs: 60_000,
      });
      t.pass('restart-always container came back');
    }
    await run(h1, 'cnew2', '--net', 'nd');
    await run(h1, 'cnew3', '--net', 'nd');
    await pingOk(t, h1, await h1.ping('cnew2', await ipOn(h1, 'cnew3', 'nd')), 'two new containers talk');
    if ((await h1.dockerTry('container', 'inspect', 'cold')).code === 0) {
      await pingOk(t, h1, await h1.ping('cnew2', await ipOn(h1, 'cold', 'nd')), 'and reach the restarted one');
    }
  });

  t.test('after removing all containers and networks no ts* devices remain', { timeout: 180_000 }, async (t) => {
    for (const h of [h1, jumbo]) {
      await ensureNet(h, 'nlast', '--subnet', '10.20.9.0/24');
      await run(h, `clast-${h.name}`, '--net', 'nlast');
      const during = await h.tsLinks();
      t.ok(during.some((n) => n.startsWith('tsbr-')), `${h.name}: a tsbr- device (the host's macvlan) exists while in use`, { links: during });
      t.ok(during.some((n) => n.startsWith('tsvx-')), `${h.name}: a tsvx- VXLAN device exists while in use`, { links: during });
      // and a bridge-mode network, whose endpoints leave a veth end here
      await ensureNet(h, 'nlastb', '--subnet', '10.20.10.0/24', '-o', 'tsoverlay.mode=bridge');
      await run(h, `clastb-${h.name}`, '--net', 'nlastb');
      const bridged = await h.tsLinks();
      t.ok(bridged.some((n) => n.startsWith('tsh')), `${h.name}: a tsh veth exists while in use`, { links: bridged });

      await h.removeAllContainers();
      const nets = (await h.docker('network', 'ls', '--filter', `driver=${DRIVER}`, '--format', '{{.Name}}'))
        .split('\n').filter(Boolean);
      if (nets.length) await h.docker('network', 'rm', ...nets);
      t.same((await h.docker('network', 'ls', '--filter', `driver=${DRIVER}`, '-q')).trim(), '', `${h.name}: no tsoverlay networks left`);
      const left = await waitFor(() => h.tsLinks(), {
        what: `no ts* devices on ${h.name}`, until: (l) => l.length === 0, timeoutMs: 20_000,
      }).catch((e: unknown) => e as Error);
      t.same(left, [], `${h.name}: no ts* devices remain`);
    }
  });
}
