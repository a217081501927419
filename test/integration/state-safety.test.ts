// Cluster state that cannot hurt a node (docs/cluster-state.md): faults
// injected into the store and the Docker calls that used to take connectivity
// away from running containers. Three hosts + one ZooKeeper server, plugins on
// a 4 s session timeout. Each case asserts what a user checks: pings between
// running containers lose nothing, devices stay, networks stay usable, and the
// plugin says why in its log.
//  A. `docker network rm` / `prune` on a node where an overlay is unused while
//     two other nodes run containers on it: the cluster keeps it, the node gets
//     it back, traffic goes on; removal works once the last container left.
//  B. Malformed records in /networks and /endpoints, and a network record of a
//     newer layout: reported, skipped; other networks keep converging; the
//     node restarts cleanly; the newer network is left untouched.
//  C. A plugin restarted with a mistyped chroot: refused, nothing changes, not
//     ready; back on the right chroot it converges.
//  D. The ensemble wiped (data lost) under running nodes, and the plugins
//     restarted against it: every node refuses it and keeps its traffic; after
//     `--adopt-store` on each node the cluster works again.
// Needs root, TSOVERLAY_IT=1 and a built plugin (npm run build).
import t, { type Test } from 'tap';
import { createOverlay, endpointOf, pingUntilOk, waitFor, waitNetwork, waitNetworkGone, type LabHost, type OverlayNet } from '../lab/index.js';
import { SKIP_REASON, integrationEnabled, labForFile } from '../lab/suite.js';

const SESSION_MS = 4000;
const SPREAD_WAIT_MS = 30_000;
/** Pings per second of the streams that must lose nothing. */
const PPS = 100;

if (!integrationEnabled()) {
  t.plan(0, SKIP_REASON);
} else {
  await main();
}

async function main(): Promise<void> {
  const lab = await labForFile(t, {
    hosts: [{ name: 'h1' }, { name: 'h2' }, { name: 'h3' }],
    zookeeper: { servers: 1, tickTimeMs: 500 },
    plugin: { store: 'zk', zkSessionTimeoutMs: SESSION_MS },
  }, {
    logLines: 150,
    beforeDestroy: async (lab) => {
      if (lab.zk && !lab.zk.isRunning(1)) await lab.zk.startServer(1).then(() => lab.zk!.waitReady(30_000)).catch(() => undefined);
    },
  });
  if (!lab) return;
  const [h1, h2, h3] = [lab.host('h1'), lab.host('h2'), lab.host('h3')];
  const hosts = [h1, h2, h3];
  const chroot = lab.zkChroot;
  try {
    await Promise.all(hosts.map((h) => h.startPlugin()));
  } catch (e) {
    t.fail(`plugin did not start: ${e instanceof Error ? e.message : String(e)}`);
    return;
  }
  t.comment(`lab ${lab.id}: store ${lab.zkStore}, dockerd ${h1.engineVersion}`);

  // ------------------------------------------------------------------ helpers
  // VNIs are reused once a network is removed: the new device is told from the devices present now
  const createNet = (h: LabHost, name: string, subnet: string, ...args: string[]): Promise<OverlayNet> => createOverlay(h, name, subnet, { args });
  const run = (h: LabHost, name: string, net: string) => h.runSleeper(name, '--net', net);
  const logSays = (h: LabHost, re: RegExp, what: string, timeoutMs = 20_000) =>
    waitFor(async () => (await h.plugin?.logTail(2000)) ?? '', { what, until: (l) => re.test(l), timeoutMs, intervalMs: 200 }).then(() => true, () => false);
  const ready = async (h: LabHost) => (await h.pluginRequest('/ready', undefined, { method: 'GET', timeoutMs: 2000 })).status;
  /** A 100 pps ping between two running containers; `done` stops it and asserts nothing was lost. */
  const stream = async (t: Test, h: LabHost, from: string, to: string, what: string) => {
    const s = await h.pingStream(from, to, { interval: 1 / PPS });
    await s.waitReplies(10);
    return {
      s,
      /** Wait for `n` more replies (time passing under a fault, measured in answered pings). */
      more: (n: number, timeoutMs = 60_000) => s.waitReplies(s.replies + n, timeoutMs),
      done: async () => {
        const r = await s.stop();
        t.ok(r.transmitted > 0 && r.received === r.transmitted, `${what}: ${r.received} of ${r.transmitted} pings answered (0 lost)`, { tail: r.output.slice(-400) });
        return r;
      },
    };
  };
  const devicesOf = async (h: LabHost) => new Set(await h.tsLinks());
  const keepsAll = async (t: Test, h: LabHost, before: Set<string>, what: string) => {
    const now = await devicesOf(h);
    const lost = [...before].filter((d) => !now.has(d));
    t.same(lost, [], `${h.name}: no tsoverlay device removed ${what}`);
  };
  const readRecord = async (path: string): Promise<Record<string, unknown>> => {
    const r = await lab.zkRaw('get', `${chroot}${path}`);
    if (r.code !== 0) throw new Error(`zk get ${path}: ${r.stderr}`);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  };
  /** The cluster key of a network, from its engine id (/netids/<id>). */
  const keyOf = async (h: LabHost, name: string) => {
    const id = (await h.docker('network', 'inspect', '-f', '{{.Id}}', name)).trim();
    return String((await readRecord(`/netids/${id}`))['network']);
  };

  // ------------------------------------------------------------------ cases

  await t.test('A. rm and prune of a network in use on other nodes: kept, back on the node, no ping lost', { timeout: 240_000 }, async (t) => {
    const shared = await createNet(h1, 'nshared', '10.40.1.0/24');
    await createNet(h1, 'nfree', '10.40.2.0/24');
    for (const h of [h2, h3]) for (const n of ['nshared', 'nfree']) await waitNetwork(h, n, SPREAD_WAIT_MS);
    await run(h2, 'a2', 'nshared');
    await run(h3, 'a3', 'nshared');
    const ip3 = (await endpointOf(h3, 'a3', 'nshared')).ip;
    const p = await stream(t, h2, 'a2', ip3, 'a2 (h2) -> a3 (h3) through rm and prune on h1');

    const rm = await h1.dockerTry('network', 'rm', 'nshared');
    t.comment(`docker network rm nshared on h1: exit ${rm.code} ${rm.stderr.trim()}`);
    t.ok(await logSays(h1, new RegExp(`nshared.*in use on (${h2.hostname}|${h3.hostname})`), 'h1 to say nshared is in use elsewhere'),
      'h1 logs that nshared is in use on the other nodes, naming them');
    await waitNetwork(h1, 'nshared', SPREAD_WAIT_MS);
    t.pass('nshared is back on h1');
    const prune = await h1.dockerTry('network', 'prune', '-f');
    t.equal(prune.code, 0, 'docker network prune -f on h1 succeeds');
    for (const h of hosts) await waitNetworkGone(h, 'nfree', SPREAD_WAIT_MS);
    t.pass('prune went on with the unused network: nfree is gone from every node');
    await waitNetwork(h1, 'nshared', SPREAD_WAIT_MS);
    for (const h of [h2, h3]) {
      t.equal((await h.dockerTry('network', 'inspect', 'nshared')).code, 0, `nshared still on ${h.name}`);
      t.ok((await h.tsLinks()).includes(shared.vxlan), `${h.name} keeps ${shared.vxlan}`);
    }
    await p.more(PPS);
    await p.done();

    // the network can still be attached on every node
    await run(h1, 'a1', 'nshared');
    const reach = await pingUntilOk(h1, 'a1', ip3, 15_000);
    t.ok(reach.ok, `a new container on h1 reaches a3 on h3 (${reach.elapsedMs} ms)`);

    // once the last container anywhere left, removal works everywhere
    for (const [h, c] of [[h1, 'a1'], [h2, 'a2'], [h3, 'a3']] as const) await h.removeContainer(c);
    await h1.docker('network', 'rm', 'nshared');
    for (const h of hosts) await waitNetworkGone(h, 'nshared', SPREAD_WAIT_MS);
    for (const h of hosts) {
      const gone = await waitFor(() => h.tsLinks(), { what: `${shared.vxlan} to leave ${h.name}`, until: (l) => !l.includes(shared.vxlan), timeoutMs: 10_000 }).then(() => true, () => false);
      t.ok(gone, `${h.name}: ${shared.vxlan} removed once unused everywhere`);
    }
  });

  await t.test('B. malformed and newer records are skipped: other networks converge, the node restarts, the newer one is untouched', { timeout: 240_000 }, async (t) => {
    const keep = await createNet(h1, 'nkeep', '10.40.3.0/24');
    await waitNetwork(h2, 'nkeep', SPREAD_WAIT_MS);
    await run(h1, 'b1', 'nkeep');
    await run(h2, 'b2', 'nkeep');
    const ip2 = (await endpointOf(h2, 'b2', 'nkeep')).ip;
    t.ok((await pingUntilOk(h1, 'b1', ip2, 15_000)).ok, 'b1 (h1) reaches b2 (h2) on nkeep');
    const p = await stream(t, h1, 'b1', ip2, 'b1 (h1) -> b2 (h2) on nkeep, whose record turns newer');
    const before = await Promise.all(hosts.map(devicesOf));

    // 1. garbage in /networks and in a network's /endpoints; nkeep's record made "newer" (an unknown layout)
    const keepKey = await keyOf(h1, 'nkeep');
    for (const [path, data] of [
      ['/networks/zz-garbage', '{"this is": not json'],
      ['/networks/zz-wrong-shape', JSON.stringify({ id: 'zz-wrong-shape', vni: 'seven' })],
      [`/endpoints/${keepKey}/zz-garbage`, 'garbage'],
    ] as const) {
      const r = await lab.zkRaw('create', `${chroot}${path}`, data);
      t.equal(r.code, 0, `wrote a malformed ${path}`, { stderr: r.stderr });
    }
    const rec = await readRecord(`/networks/${keepKey}`);
    const newer = { ...rec, ...('layout' in rec ? { layout: 'ipvlan-l3' } : { mode: 'ipvlan-l3' }) };
    t.equal((await lab.zkRaw('create', `${chroot}/networks/${keepKey}`, JSON.stringify(newer))).code, 0, 'nkeep\'s record now has a layout this version does not know');

    // 2. a network created afterwards still reaches the other nodes and carries traffic
    await createNet(h2, 'nafter', '10.40.4.0/24');
    for (const h of [h1, h3]) await waitNetwork(h, 'nafter', SPREAD_WAIT_MS);
    t.pass('nafter, created after the bad records, reached h1 and h3');
    await run(h3, 'b3', 'nafter');
    await run(h1, 'b1after', 'nafter');
    const reach = await pingUntilOk(h3, 'b3', (await endpointOf(h1, 'b1after', 'nafter')).ip, 15_000);
    t.ok(reach.ok, `b3 (h3) reaches b1after (h1) on nafter (${reach.elapsedMs} ms)`);

    // 3. the node restarts cleanly and reports the bad records
    await h2.restartPlugin();
    t.pass('h2 restarted and is ready with the bad records in the store');
    t.ok(await logSays(h2, /zz-garbage/, 'h2 to report the garbage record'), 'h2 names the malformed record in its log');
    t.ok(await logSays(h1, new RegExp(`${keepKey}.*(layout|newer)|(layout|newer).*${keepKey}`), 'h1 to report the newer record'),
      'h1 says the newer network is left untouched');
    await p.more(PPS * 2);
    await p.done();
    for (const [i, h] of hosts.entries()) await keepsAll(t, h, before[i]!, 'for a newer or malformed record');
    t.ok((await h1.tsLinks()).includes(keep.vxlan), `h1 keeps ${keep.vxlan}`);

    // put things back: nkeep's own record, no garbage
    await lab.zkRaw('create', `${chroot}/networks/${keepKey}`, JSON.stringify(rec));
    for (const path of ['/networks/zz-garbage', '/networks/zz-wrong-shape', `/endpoints/${keepKey}/zz-garbage`]) await lab.zkRaw('rmr', `${chroot}${path}`);
    for (const [h, c] of [[h1, 'b1'], [h2, 'b2'], [h3, 'b3'], [h1, 'b1after']] as const) await h.removeContainer(c);
  });

  await t.test('C. a plugin restarted with a mistyped chroot changes nothing and is not ready; the right one converges', { timeout: 180_000 }, async (t) => {
    const n = await createNet(h1, 'nchroot', '10.40.5.0/24');
    await waitNetwork(h2, 'nchroot', SPREAD_WAIT_MS);
    await run(h1, 'c1', 'nchroot');
    await run(h2, 'c2', 'nchroot');
    const ip2 = (await endpointOf(h2, 'c2', 'nchroot')).ip;
    t.ok((await pingUntilOk(h1, 'c1', ip2, 15_000)).ok, 'c1 (h1) reaches c2 (h2)');
    const p = await stream(t, h1, 'c1', ip2, 'c1 (h1) -> c2 (h2) while h1 runs on a wrong chroot');
    const before = await devicesOf(h1);

    await h1.restartPlugin({ store: `${lab.zkStore}-typo`, ready: false });
    t.ok(await logSays(h1, /cluster store refused/, 'h1 to refuse the store'), 'h1 logs "cluster store refused"');
    t.equal(await ready(h1), 503, 'h1 reports not ready (GET /ready 503)');
    const create = await h1.dockerTry('network', 'create', '-d', 'tsoverlay', '--ipam-driver', 'tsoverlay', '--subnet', '10.40.6.0/24', 'ntypo');
    t.not(create.code, 0, 'a docker network create on h1 fails');
    t.match(create.stderr, /cluster store refused.*--adopt-store/, 'with an error that says why and what to do');
    await p.more(PPS * 3);
    await keepsAll(t, h1, before, 'on a wrong chroot');

    await h1.restartPlugin({ store: 'zk' });
    t.equal(await ready(h1), 200, 'back on the right chroot, h1 is ready');
    await run(h1, 'c1b', 'nchroot');
    t.ok((await pingUntilOk(h1, 'c1b', ip2, 15_000)).ok, 'a new container on h1 reaches c2');
    await p.done();
    await keepsAll(t, h1, before, 'after the restart on the right chroot');
    t.ok((await h1.tsLinks()).includes(n.vxlan), `h1 keeps ${n.vxlan}`);
    for (const [h, c] of [[h1, 'c1'], [h1, 'c1b'], [h2, 'c2']] as const) await h.removeContainer(c);
  });

  await t.test('D. a wiped ensemble is refused by every restarted node, traffic goes on; --adopt-store brings the cluster back', { timeout: 300_000 }, async (t) => {
    const n = await createNet(h1, 'nwipe', '10.40.7.0/24');
    for (const h of [h2, h3]) await waitNetwork(h, 'nwipe', SPREAD_WAIT_MS);
    await run(h1, 'd1', 'nwipe');
    await run(h3, 'd3', 'nwipe');
    const ip3 = (await endpointOf(h3, 'd3', 'nwipe')).ip;
    t.ok((await pingUntilOk(h1, 'd1', ip3, 15_000)).ok, 'd1 (h1) reaches d3 (h3)');
    const p = await stream(t, h1, 'd1', ip3, 'd1 (h1) -> d3 (h3) through a wiped ensemble and the adoption');
    const before = await Promise.all(hosts.map(devicesOf));

    await lab.zk!.wipeServer(1);
    await lab.zk!.waitReady(60_000);
    // A running plugin cannot even reconnect (ZooKeeper refuses a client that
    // has seen a newer zxid than the wiped server has), so nothing changes on
    // its own; each node's plugin restarted against the wiped ensemble refuses it.
    for (const h of hosts) {
      await h.restartPlugin({ store: 'zk', ready: false });
      t.ok(await logSays(h, /cluster store refused/, `${h.name} to refuse the wiped store`, 60_000), `${h.name}, restarted, refuses the wiped store`);
    }
    for (const h of hosts) t.equal(await ready(h), 503, `${h.name} reports not ready`);
    await p.more(PPS * 3);
    for (const [i, h] of hosts.entries()) await keepsAll(t, h, before[i]!, 'on a wiped store');

    // the documented adoption: each node's plugin restarted once with --adopt-store
    for (const h of hosts) await h.restartPlugin({ store: 'zk', args: ['--adopt-store'] });
    for (const h of hosts) t.equal(await ready(h), 200, `${h.name} ready after --adopt-store`);
    const fresh = await createNet(h2, 'nadopted', '10.40.8.0/24');
    for (const h of [h1, h3]) await waitNetwork(h, 'nadopted', SPREAD_WAIT_MS);
    await run(h2, 'd2new', 'nadopted');
    await run(h3, 'd3new', 'nadopted');
    const reach = await pingUntilOk(h2, 'd2new', (await endpointOf(h3, 'd3new', 'nadopted')).ip, 15_000);
    t.ok(reach.ok, `a network created after the adoption works across nodes (${reach.elapsedMs} ms)`);
    await p.more(PPS);
    await p.done();
    for (const [i, h] of hosts.entries()) await keepsAll(t, h, before[i]!, 'after the adoption');
    t.ok(fresh.vni > 0 && (await h1.tsLinks()).includes(n.vxlan), `h1 still holds the old network's ${n.vxlan}`);
  });
}
