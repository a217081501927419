/**
 * The resolver data-path test (real kernel only, TSOVERLAY_IT=1): one
 * "host" namespace with a network bridge and the resolver address R on it,
 * a "container" namespace on that bridge and an "outside" namespace on the
 * underlay; a UDP echo server bound to R in the host is asked from each
 * side, before and after the firewall rules (`IptablesFirewall` running
 * `iptables` in the host namespace through `ip netns exec`).
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import t, { type Test } from 'tap';
import { DNS_CHAIN, IptablesFirewall, RESOLVER_COMMENT, runCommand } from '../../../src/dataplane/iptables-firewall.js';
import type { BridgeNetworkDevices, EndpointDevices, TableRoute } from '../../../src/dataplane/dataplane.js';
import { bridgeName, containerIfName, hostIfName, vxlanName } from '../../../src/dataplane/names.js';
import { ip, ipOut, PRIORITY, R, realKernelOptions, TABLE, UNDERLAY } from './harness.js';
import { RemoteDataplane } from './remote-dataplane.js';

/** UDP echo server: `node -e ECHO_SERVER <address> <port>`; answers "<source> said <payload>", prints "ready" once bound. */
const ECHO_SERVER = `
const [address, port] = process.argv.slice(1);
const s = require('node:dgram').createSocket(address.includes(':') ? 'udp6' : 'udp4');
s.on('message', (m, r) => s.send(r.address + ' said ' + m, r.port, r.address));
s.bind(Number(port), address, () => console.log('ready'));
`;

/** UDP client: `node -e UDP_ASK <address> <port> <ms>`; sends every 200 ms, prints {reply, from} or {} after <ms>. */
const UDP_ASK = `
const [address, port, ms] = process.argv.slice(1);
const s = require('node:dgram').createSocket(address.includes(':') ? 'udp6' : 'udp4');
const done = (o) => { console.log(JSON.stringify(o)); process.exit(0); };
s.on('message', (m, r) => done({ reply: String(m), from: r.address + ':' + r.port }));
s.on('error', (e) => done({ error: e.code }));
const send = () => s.send('hello', Number(port), address);
send();
setInterval(send, 200);
setTimeout(() => done({}), Number(ms));
`;

interface UdpAnswer {
  reply?: string;
  from?: string;
  error?: string;
}

/** Ask the echo server at `address`:`port` from namespace `ns`; {} if no answer within `ms`. */
const udpAsk = (ns: string, address: string, port: number, ms: number): Promise<UdpAnswer> =>
  new Promise((resolve, reject) => {
    execFile('ip', ['netns', 'exec', ns, process.execPath, '-e', UDP_ASK, address, String(port), String(ms)], { timeout: ms + 10_000 }, (err, stdout) => {
      if (err) return reject(err);
      resolve(JSON.parse(stdout) as UdpAnswer);
    });
  });

const resolverPath = async (t: Test): Promise<void> => {
  const id = randomBytes(3).toString('hex');
  const HOST = `tsrs-${id}-h`;
  const CTR = `tsrs-${id}-c`;
  const OUT = `tsrs-${id}-o`;
  const VNI = 0xabc;
  const PORT = 5300;
  const CTR_IP = '10.77.0.5';
  const SUBNET = '10.77.0.0/24';
  const namespaces = [HOST, CTR, OUT];
  const procs: ChildProcess[] = [];
  let dp: RemoteDataplane | undefined;
  // Registered first, so a half-built setup is removed too; processes before
  // namespaces (a namespace lives on while a process is in it).
  t.teardown(async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill();
    await dp?.close();
    for (const n of namespaces) if (existsSync(`/run/netns/${n}`)) ip('netns', 'del', n);
  });
  for (const n of namespaces) {
    ip('netns', 'add', n);
    ip('-n', n, 'link', 'set', 'lo', 'up');
  }
  // The underlay: HOST's ul0 faces OUT, a neighbour that routes R to us and
  // would use the resolver if nothing stopped it.
  ip('-n', HOST, 'link', 'add', UNDERLAY, 'type', 'veth', 'peer', 'name', UNDERLAY, 'netns', OUT);
  for (const [n, addr] of [
    [HOST, '192.168.79.2/24'],
    [OUT, '192.168.79.1/24'],
  ] as const) {
    ip('-n', n, 'addr', 'add', addr, 'dev', UNDERLAY);
    ip('-n', n, 'link', 'set', UNDERLAY, 'up');
  }
  ip('-n', HOST, 'route', 'add', 'default', 'via', '192.168.79.1', 'dev', UNDERLAY);
  ip('-n', OUT, 'route', 'add', `${R}/32`, 'via', '192.168.79.2', 'dev', UNDERLAY);

  dp = new RemoteDataplane(HOST);
  const ul = await dp.call('resolveUnderlay', UNDERLAY);
  const net: BridgeNetworkDevices = {
    layout: 'bridge',
    vni: VNI,
    bridge: bridgeName(VNI),
    vxlan: vxlanName(VNI),
    port: 4789,
    local: ul.address,
    underlayIndex: ul.ifindex,
    mtu: ul.mtu - 50,
  };
  t.equal(net.bridge, 'tsbr-000abc');
  await dp.call('ensureNetwork', net);
  const ep: EndpointDevices = {
    layout: 'bridge',
    hostIf: hostIfName(`rs${id}000`),
    containerIf: containerIfName(`rs${id}000`),
    bridge: net.bridge,
    mtu: net.mtu,
    mac: '02:42:0a:4d:00:05',
  };
  await dp.call('ensureEndpoint', ep);
  // What Docker does at Join, with the on-link route to R the driver returns.
  ip('-n', HOST, 'link', 'set', ep.containerIf, 'netns', CTR);
  ip('-n', CTR, 'link', 'set', ep.containerIf, 'name', 'eth0');
  ip('-n', CTR, 'addr', 'add', `${CTR_IP}/24`, 'dev', 'eth0');
  ip('-n', CTR, 'link', 'set', 'eth0', 'up');
  ip('-n', CTR, 'route', 'add', `${R}/32`, 'dev', 'eth0');

  // The resolver's kernel setup, as the reconciler will ask for it.
  const route: TableRoute = { dst: SUBNET, dev: net.bridge, src: R };
  await dp.call('ensureBridgeAddress', net.bridge, R);
  await dp.call('ensureSourceRule', R, TABLE, PRIORITY);
  await dp.call('ensureTableRoute', TABLE, route);

  const server = spawn('ip', ['netns', 'exec', HOST, process.execPath, '-e', ECHO_SERVER, R, String(PORT)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  procs.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once('exit', (code) => reject(new Error(`echo server exited (${code})`)));
    createInterface({ input: server.stdout }).once('line', (line) => (line === 'ready' ? resolve() : reject(new Error(line))));
  });
  const answered = { reply: `${CTR_IP} said hello`, from: `${R}:${PORT}` };
  const flushNeighbours = (): void => {
    ip('-n', HOST, 'neigh', 'flush', 'dev', net.bridge);
    ip('-n', CTR, 'neigh', 'flush', 'dev', 'eth0');
  };

  await t.test('a container asks R on its bridge and the answer comes back', async (t) => {
    t.same(await udpAsk(CTR, R, PORT, 5000), answered, 'default sysctls');
    // The strictest common settings: strict reverse-path filter, ARP replies
    // only for addresses of the interface, ARP requests from an address of
    // the outgoing interface's scope.
    for (const [key, value] of [
      ['net.ipv4.conf.all.rp_filter', '1'],
      ['net.ipv4.conf.all.arp_ignore', '1'],
      ['net.ipv4.conf.all.arp_announce', '2'],
    ] as const) {
      execFileSync('ip', ['netns', 'exec', HOST, 'sysctl', '-q', '-w', `${key}=${value}`]);
    }
    flushNeighbours();
    t.same(await udpAsk(CTR, R, PORT, 5000), answered, 'rp_filter=1, arp_ignore=1, arp_announce=2');
    const neigh = ipOut('-n', CTR, 'neigh', 'show', 'dev', 'eth0');
    t.match(neigh, new RegExp(`^${R.replace(/\./g, '\\.')} lladdr `, 'm'), 'the container resolved R on its link');
    // The host forgets the container while the container still knows R: to
    // answer, the host ARPs for the container itself. With arp_announce=2 the
    // request's source is chosen at link scope: R must be scope link (a
    // host-scope R would be skipped for the underlay address, which a
    // container with a strict rp_filter ignores: the answer is lost).
    execFileSync('ip', ['netns', 'exec', CTR, 'sysctl', '-q', '-w', 'net.ipv4.conf.all.rp_filter=1']);
    ip('-n', HOST, 'neigh', 'flush', 'dev', net.bridge);
    t.same(await udpAsk(CTR, R, PORT, 5000), answered, 'the host ARPs for the container from R');
  });

  await t.test('only packets from R see the table: the main table has no route to the subnet', async (t) => {
    const main = JSON.parse(ipOut('-n', HOST, '-j', 'route', 'show', 'table', 'main')) as { dst: string; dev: string }[];
    t.notOk(
      main.some((r) => r.dst === SUBNET || r.dev === net.bridge),
      'no main-table route to the subnet or through the bridge',
    );
    const plain = JSON.parse(ipOut('-n', HOST, '-j', 'route', 'get', CTR_IP)) as { dev: string }[];
    t.equal(plain[0]?.dev, UNDERLAY, 'the host itself reaches the container subnet only through its default route');
    const fromR = JSON.parse(ipOut('-n', HOST, '-j', 'route', 'get', CTR_IP, 'from', R)) as { dev: string; prefsrc?: string }[];
    t.equal(fromR[0]?.dev, net.bridge, 'from R: through the bridge');
    t.same(await dp?.call('listTableRoutes', TABLE), [route]);
    t.same(
      (await dp?.call('listOwnedLinks'))?.find((l) => l.name === net.bridge)?.addresses,
      [R],
      'the bridge lists R',
    );
  });

  await t.test('without the table route the answer is lost', async (t) => {
    t.equal(await dp?.call('deleteTableRoute', TABLE, route), true);
    t.same(await udpAsk(CTR, R, PORT, 1500), {}, 'no answer');
    await dp?.call('ensureTableRoute', TABLE, route);
    t.same(await udpAsk(CTR, R, PORT, 5000), answered, 'answered again once the route is back');
  });

  await t.test('firewall: R answers the bridges and the node, not the underlay', async (t) => {
    t.same(
      await udpAsk(OUT, R, PORT, 5000),
      { reply: '192.168.79.1 said hello', from: `${R}:${PORT}` },
      'without the rules a neighbour on the underlay reaches R',
    );
    const fw = new IptablesFirewall(undefined, (cmd, args, input) => runCommand('ip', ['netns', 'exec', HOST, cmd, ...args], input));
    await fw.ensureResolverInput(R);
    await fw.ensureResolverSources(R, [{ subnet: SUBNET, device: net.bridge }]);
    await fw.ensureResolverInput(R);
    await fw.ensureResolverSources(R, [{ subnet: SUBNET, device: net.bridge }]);
    const rules = ipOut('netns', 'exec', HOST, 'iptables', '-S', 'INPUT').split('\n').filter((l) => l.startsWith('-A'));
    const tag = `-m comment --comment "${RESOLVER_COMMENT}"`;
    t.same(
      rules,
      [
        `-A INPUT -d ${R}/32 -i tsbr+ ${tag} -j ${DNS_CHAIN}`,
        `-A INPUT -d ${R}/32 -i lo ${tag} -j ACCEPT`,
        `-A INPUT -d ${R}/32 ${tag} -j DROP`,
      ],
      'three rules, in order, once: the bridges through the source filter',
    );
    t.same(await udpAsk(OUT, R, PORT, 1500), {}, 'the neighbour gets no answer');
    t.same(await udpAsk(CTR, R, PORT, 5000), answered, 'the container still does');
    t.same(await udpAsk(HOST, R, PORT, 5000), { reply: `${R} said hello`, from: `${R}:${PORT}` }, 'and the node itself (lo)');
  });
};

t.test('resolver address: data path through the bridge, policy routing, firewall', realKernelOptions(), resolverPath);
