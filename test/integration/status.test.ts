// `tsoverlay status` and `doctor` on real hosts: three dockerd hosts sharing
// one ZooKeeper, a container on each in one network. status on h1 (run in
// h1's network namespace with its plugin's options) says converged and lists
// the nodes, the network and h1's endpoint; an FDB entry broken by hand
// (`bridge fdb replace … dst <wrong VTEP>`) right after a full reconcile pass
// makes status exit 1 naming the entry and doctor name the fix; the plugin's
// next full pass repairs it and status is 0 again.
// Needs root, TSOVERLAY_IT=1 and a built plugin (npm run build).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { createOverlay, endpointOf, nodeFlagsOf, run, waitFor, type LabHost } from '../lab/index.js';
import { SKIP_REASON, integrationEnabled, labForFile } from '../lab/suite.js';
import type { StatusReport } from '../../src/ops/status-model.js';

if (!integrationEnabled()) {
  t.plan(0, SKIP_REASON);
} else {
  await main();
}

async function main(): Promise<void> {
  const lab = await labForFile(t, {
    hosts: [{ name: 'h1', mtu: 1500 }, { name: 'h2', mtu: 1500 }, { name: 'h3', mtu: 1500 }],
    zookeeper: { servers: 1, tickTimeMs: 500 },
    plugin: { store: 'zk', zkSessionTimeoutMs: 4000 },
  }, { logLines: 80 });
  if (!lab) return;
  const [h1, h2, h3] = [lab.host('h1'), lab.host('h2'), lab.host('h3')];
  await Promise.all([h1, h2, h3].map((h) => h.startPlugin()));
  const cli = join(process.cwd(), 'dist', 'cli.js');

  /** The CLI in the host's network namespace, with the options its plugin runs with. */
  const ops = async (h: LabHost, command: 'status' | 'doctor', ...extra: string[]) => {
    const args = [
      `--net=/run/netns/${h.ns}`, '--', process.execPath, ...(await nodeFlagsOf(cli)), cli, command,
      '--store', lab.zkStore ?? '', '--advertise', h.underlay, '--node-name', h.hostname, '--socket', h.pluginSocket, ...extra,
    ];
    const started = performance.now();
    const r = await run('nsenter', args, { timeoutMs: 60_000, env: { ...process.env, NO_COLOR: '1' } });
    return { ...r, ms: Math.round(performance.now() - started) };
  };
  const statusJson = async (h: LabHost) => {
    const r = await ops(h, 'status', '--json');
    return { code: r.code, report: JSON.parse(r.stdout || '{}') as StatusReport, stderr: r.stderr, ms: r.ms };
  };

  const net = await createOverlay(h1, 'st1', '10.61.0.0/24');
  await waitFor(async () => (await h2.dockerTry('network', 'inspect', 'st1')).code === 0 && (await h3.dockerTry('network', 'inspect', 'st1')).code === 0, {
    what: 'st1 on h2 and h3', timeoutMs: 45_000, intervalMs: 200,
  });
  await h1.runSleeper('c1', '--net', 'st1');
  await h2.runSleeper('c2', '--net', 'st1');
  await h3.runSleeper('c3', '--net', 'st1');
  const [e1, e2, e3] = [await endpointOf(h1, 'c1', 'st1'), await endpointOf(h2, 'c2', 'st1'), await endpointOf(h3, 'c3', 'st1')];
  await waitFor(async () => {
    const fdb = await h1.fdbEntries();
    return fdb.some((f) => f.mac === e2.mac && f.dst === h2.ip) && fdb.some((f) => f.mac === e3.mac && f.dst === h3.ip);
  }, { what: 'h1 to hold the entries toward c2 and c3', timeoutMs: 30_000, intervalMs: 200 });

  await t.test('status on a converged node: exit 0, the nodes, the network, its endpoint', async (t) => {
    const s = await waitFor(async () => {
      const r = await statusJson(h1);
      return r.code === 0 ? r : Promise.reject(new Error(`status exit ${r.code}: ${JSON.stringify(r.report.devices ?? r.stderr)} ${JSON.stringify(r.report.forwarding)}`));
    }, { what: 'status on h1 to say converged', timeoutMs: 30_000, intervalMs: 500 });
    t.equal(s.code, 0, `exit 0 (${s.ms} ms)`);
    t.ok(s.report.converged);
    t.same(
      s.report.nodes.map((n) => [n.name, n.vtep, n.state, n.self]),
      [[h1.hostname, h1.ip, 'alive', true], [h2.hostname, h2.ip, 'alive', false], [h3.hostname, h3.ip, 'alive', false]],
    );
    t.ok(s.report.nodes.every((n) => typeof n.version === 'string' && n.sessionAgeS !== undefined), 'versions and session ages');
    const n = s.report.networks.find((x) => x.names.includes('st1'));
    t.match(n, { vni: net.vni, subnets: ['10.61.0.0/24'], layout: 'macvlan', mtu: 1450 });
    t.same(n?.nodes, [h1, h2, h3].map((h) => ({ node: h.hostname, endpoints: 1 })), 'each node with its one endpoint');
    t.same(s.report.endpoints.map((e) => [e.network, e.ipv4, e.mac, e.joined]), [['st1', `${e1.ip}/24`, e1.mac, true]]);
    const text = await ops(h1, 'status');
    t.equal(text.code, 0);
    t.match(text.stdout, /^converged: /m);
    t.comment(`status on h1 (${text.ms} ms):\n${text.stdout}`);
  });

  await t.test('an FDB entry toward the wrong VTEP: status exits 1 naming it, doctor names the fix, the next full pass repairs it', async (t) => {
    // break it right after a full pass (plugin log at debug), so the next one is ~30 s away
    const fullPasses = async () => ((await readFile(h1.pluginLog, 'utf8')).match(/"full":true/g) ?? []).length;
    const before = await fullPasses();
    await waitFor(async () => (await fullPasses()) > before, { what: 'a full reconcile pass on h1', timeoutMs: 45_000, intervalMs: 100 });
    const brokeAt = Date.now();
    const br = await run('bridge', ['-n', h1.ns, 'fdb', 'replace', e2.mac, 'dev', net.vxlan, 'dst', h3.ip, 'self', 'permanent']);
    t.equal(br.code, 0, `bridge fdb replace ${e2.mac} dst ${h3.ip} ${br.stderr}`);

    // side by side: all three must run before the next full pass (>= 27 s after the last) repairs the entry
    const [s, d, text] = await Promise.all([statusJson(h1), ops(h1, 'doctor'), ops(h1, 'status')]);
    t.ok(Date.now() - brokeAt < 25_000, `status and doctor ran before the next full pass (${Date.now() - brokeAt} ms)`);
    t.equal(s.code, 1, 'status exits 1');
    t.same(s.report.forwarding, [{ network: 'st1', vxlan: net.vxlan, table: 'fdb', problem: 'wrong-vtep', key: e2.mac, want: h2.ip, have: h3.ip }], 'names the entry');
    t.equal(text.code, 1);
    t.match(text.stdout, new RegExp(`^st1\\s+${net.vxlan}\\s+fdb ${e2.mac}\\s+wrong-vtep\\s+${h2.ip.replace(/\./g, '\\.')}\\s+${h3.ip.replace(/\./g, '\\.')}$`, 'm'));
    t.equal(d.code, 1, 'doctor exits 1');
    t.match(d.stdout, new RegExp(`forwarding\\s+fail\\s+st1 ${net.vxlan} fdb ${e2.mac}: wrong VTEP ${h3.ip}, the store says ${h2.ip}`));
    t.ok(d.stdout.includes(`bridge fdb replace ${e2.mac} dev ${net.vxlan} dst ${h2.ip} self permanent`), 'doctor names the fix');
    for (const ok of ['store', 'membership', 'plugin socket', 'vxlan udp port', 'vxlan firewall', 'vxlan members filter', 'kernel features', 'iptables backend', 'resolver', 'resolver source filter', 'mtu']) {
      t.match(d.stdout, new RegExp(`^${ok}\\s+ok\\s`, 'm'), `doctor: ${ok} ok`);
    }
    t.comment(`status on h1 with a broken entry:\n${text.stdout}`);
    t.comment(`doctor on h1 (${d.ms} ms):\n${d.stdout}`);

    const repaired = await waitFor(async () => {
      const r = await statusJson(h1);
      return r.code === 0 ? r : Promise.reject(new Error(`status exit ${r.code}: ${JSON.stringify(r.report.forwarding)}`));
    }, { what: 'the next full pass to repair the entry', timeoutMs: 60_000, intervalMs: 1000 });
    t.equal(repaired.code, 0, `converged again ${Math.round((Date.now() - brokeAt) / 1000)} s after the break`);
    t.ok((await h1.fdbEntries()).some((f) => f.mac === e2.mac && f.dst === h2.ip), 'the kernel holds the right VTEP again');
  });
}
