import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { BridgeNetworkDevices, MacvlanNetworkDevices } from '../dataplane/dataplane.js';
import { FakeDataplane } from '../dataplane/fake-dataplane.js';
import { FakeFirewall } from '../dataplane/fake-firewall.js';
import { bridgeName, containerIfName, hostIfName, vxlanName } from '../dataplane/names.js';
import { RESOLVER_RULE_PRIORITY, RESOLVER_TABLE } from '../reconcile/desired.js';
import { type PluginState, probePlugin, runCleanup } from './cleanup-command.js';

const R = '169.254.53.53';

/** A node as a running plugin leaves it: two networks (both layouts), an endpoint, the resolver's pieces, the state files. */
const node = async () => {
  const dp = new FakeDataplane();
  const fw = new FakeFirewall();
  fw.dockerUser = true;
  const net: BridgeNetworkDevices = { layout: 'bridge', vni: 0x1000, vxlan: vxlanName(0x1000), bridge: bridgeName(0x1000), port: 4789, local: '10.0.0.2', underlayIndex: 2, mtu: 1450 };
  const mnet: MacvlanNetworkDevices = { layout: 'macvlan', vni: 0x1001, vxlan: vxlanName(0x1001), hostMacvlan: bridgeName(0x1001), port: 4789, local: '10.0.0.2', underlayIndex: 2, mtu: 1450 };
  await dp.ensureNetwork(net);
  await dp.ensureNetwork(mnet);
  await dp.ensureEndpoint({ layout: 'bridge', hostIf: hostIfName('0123456789ab'), containerIf: containerIfName('0123456789ab'), bridge: net.bridge, mtu: 1450, mac: '02:42:0a:14:00:02' });
  await dp.ensureLocalAddress(R);
  await dp.ensureBridgeAddress(net.bridge, R);
  await dp.ensureSourceRule(R, RESOLVER_TABLE, RESOLVER_RULE_PRIORITY);
  await dp.ensureTableRoute(RESOLVER_TABLE, { dst: '10.20.0.0/24', dev: net.bridge, src: R });
  // a device of someone else's that happens to start with "ts"
  dp.links.set('tsfoo', { name: 'tsfoo', index: 99, kind: 'dummy', mtu: 1500, up: true, mac: '02:00:00:00:00:99' });
  await fw.ensureBridgeForwarding();
  await fw.ensureResolverInput(R);
  await fw.ensureResolverSources(R, [{ subnet: '10.20.0.0/24', device: net.bridge }, { subnet: '10.21.0.0/24', device: mnet.hostMacvlan }]);
  await fw.ensureVxlanMembers(4789, ['10.0.0.2', '10.0.0.3']);

  const dir = mkdtempSync(join(tmpdir(), 'tsoverlay-cleanup-'));
  const state = join(dir, 'lib');
  mkdirSync(state);
  for (const f of ['state.json', '.state.json.tmp', 'zk-session.json', 'zk-session.json.records', 'cluster-id', 'cluster-id.tmp-4242']) {
    writeFileSync(join(state, f), '{}', { mode: 0o600 });
  }
  const env = {
    TSOVERLAY_STORE: `file://${join(state, 'state.json')}`,
    TSOVERLAY_SESSION_FILE: join(state, 'zk-session.json'),
    TSOVERLAY_SOCKET: join(dir, 'tsoverlay.sock'),
  };
  const out: string[] = [];
  const err: string[] = [];
  let probed: PluginState = { running: false };
  const run = (...argv: string[]) =>
    runCleanup(argv, {
      env,
      out: (s) => out.push(s),
      err: (s) => err.push(s),
      open: async () => ({ dataplane: dp, firewall: fw }),
      probe: async () => probed,
    });
  const snapshot = async () => ({
    links: (await dp.listOwnedLinks()).map((l) => l.name).sort(),
    rules: await dp.listSourceRules(RESOLVER_TABLE),
    routes: await dp.listTableRoutes(RESOLVER_TABLE),
    lo: await dp.listLocalAddresses(),
    fw: await fw.listOwnedRules(),
    chains: await fw.listOwnedChains(),
    files: readdirSync(state).sort(),
  });
  return { dp, fw, dir, state, env, out, err, run, snapshot, setRunning: (s: PluginState) => (probed = s) };
};

t.test('dry run: lists everything of ours, removes nothing, exits 0', async (t) => {
  const n = await node();
  const before = await n.snapshot();
  t.equal(await n.run(), 0);
  const text = n.out.join('');
  for (const want of [
    'device tsbr-001000 (bridge)',
    'device tsvx-001001 (vxlan)',
    `device ${hostIfName('0123456789ab')} (veth)`,
    `policy rule from ${R} lookup 5353 priority 5353`,
    `address ${R} on lo`,
    'route 10.20.0.0/24 dev tsbr-001000 table 5353',
    'firewall rule iptables -t filter -A DOCKER-USER -i tsbr+ -o tsbr+ -m comment --comment "tsoverlay bridges" -j ACCEPT',
    'firewall rule ip6tables -t raw -A PREROUTING',
    'firewall rule iptables -t raw -A PREROUTING -p udp -m udp --dport 4789 -j TSOVERLAY-VXLAN',
    'firewall chain TSOVERLAY-VXLAN (iptables -t raw)',
    'firewall rule iptables -t filter -A INPUT -d 169.254.53.53/32 -i tsbr+ -m comment --comment "tsoverlay resolver" -j TSOVERLAY-DNS',
    'firewall chain TSOVERLAY-DNS (iptables -t filter)',
    `file ${join(n.state, 'state.json')}`,
    `file ${join(n.state, 'cluster-id.tmp-4242')}`,
    `directory ${n.state} (if empty then)`,
    'left alone: device tsfoo',
    'Dry run: nothing was removed',
  ]) {
    t.match(text, want);
  }
  t.notMatch(text, /device tsfoo \(/, 'a foreign "ts" device is not listed for removal');
  t.notMatch(text, /tsoverlay\.sock/, 'no socket file: not listed');
  t.same(await n.snapshot(), before, 'nothing changed');
  t.same(n.err, []);
});

t.test('refused while the plugin answers, unless --force', async (t) => {
  const n = await node();
  n.setRunning({ running: true, how: 'the plugin answers on /x.sock' });
  const before = await n.snapshot();
  t.equal(await n.run('--yes'), 1);
  t.match(n.err.join(''), /refused: the plugin answers on \/x\.sock, so the plugin is running\. Stop it first/);
  t.same(await n.snapshot(), before, 'nothing changed');
  t.equal(await n.run('--yes', '--force'), 0);
  t.match(n.out.join(''), /warning: the plugin answers on \/x\.sock; going on because of --force/);
  t.same((await n.dp.listOwnedLinks()).map((l) => l.name), ['tsfoo'], 'removed with --force');
});

t.test('--yes removes everything of ours and nothing else; a second run finds nothing', async (t) => {
  const n = await node();
  t.equal(await n.run('--yes'), 0, n.err.join(''));
  t.same((await n.dp.listOwnedLinks()).map((l) => l.name), ['tsfoo'], 'only the foreign device is left');
  t.same(await n.dp.listSourceRules(RESOLVER_TABLE), []);
  t.same(await n.dp.listTableRoutes(RESOLVER_TABLE), []);
  t.same(await n.dp.listLocalAddresses(), []);
  t.same(await n.fw.listOwnedRules(), []);
  t.same(await n.fw.listOwnedChains(), []);
  t.notOk(existsSync(n.state), 'the emptied state directory is removed');
  t.match(n.out.join(''), /removed \d+, already gone \d+, kept 0, failed 0\./);
  n.out.length = 0;
  t.equal(await n.run('--yes'), 0);
  t.match(n.out.join(''), /nothing of tsoverlay's on this node/);
});

t.test('a state directory that holds other files is kept; a failure is reported and the rest still go', async (t) => {
  const n = await node();
  writeFileSync(join(n.state, 'notes.txt'), 'mine');
  n.dp.failNext('deleteLink', new Error('kernel says no'));
  t.equal(await n.run('--yes'), 1, 'a failure: non-zero');
  t.same(readdirSync(n.state), ['notes.txt'], 'only the foreign file is left');
  t.match(n.out.join(''), /kept directory .* \(if empty then\): it still holds notes\.txt/);
  t.match(n.err.join(''), /could not remove device .*: kernel says no/);
  t.same(await n.fw.listOwnedRules(), [], 'the other items still went');
});

t.test('--help and bad settings', async (t) => {
  const n = await node();
  t.equal(await n.run('--help'), 0);
  t.match(n.out.join(''), /Usage: tsoverlay cleanup \[--yes\] \[--force\]/);
  t.equal(await n.run('--store', 'nonsense'), 2);
  t.match(n.err.join(''), /--store nonsense/);
});

t.test('probePlugin: a serving socket is running; no socket file or a stale one is not', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsoverlay-probe-'));
  const sock = join(dir, 'p.sock');
  t.same(await probePlugin(sock), { running: false }, 'no file');
  const server = createServer((_req, res) => res.end('{}'));
  await new Promise<void>((resolve) => server.listen(sock, resolve));
  t.same(await probePlugin(sock), { running: true, how: `the plugin answers on ${sock}` });
  await new Promise<void>((resolve) => server.close(() => resolve()));
  writeFileSync(sock, ''); // a stale file where the socket was
  t.same(await probePlugin(sock), { running: false }, 'a stale file: refused');
});
