// Garbage collection (docs/cluster-state.md, "Collection"): what Docker calls
// never removed is collected, on lasting evidence only. Three hosts + one
// ZooKeeper server; plugins on a 4 s session timeout, --collect-after-ms 5000,
// --orphan-grace-ms 8000. Each case asserts what a user checks: the addresses
// can be taken again, the names no longer resolve.
//  A. A node dies for good: kill -9 of h3's plugin and dockerd (with its
//     containers) in the middle of a `docker run` on a /29. After the
//     collection time, containers on h1 take every address the dead ones held,
//     their names no longer resolve, and h3 leaves the pool's users and the
//     network's aliases; the live nodes' containers are untouched. While it
//     is gone, `tsoverlay status` on h1 lists it as gone with the time the
//     collector first saw it gone (/gone/<node>), which goes with its records.
//  B. An own orphan: an endpoint record (with its address and name) that h1's
//     engine never had is removed by h1 after the grace, not before.
// Needs root, TSOVERLAY_IT=1 and a built plugin (npm run build).
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { NodeStatus, StatusReport } from '../../src/ops/status-model.js';
import { BUSYBOX_IMAGE, SLEEPER, createOverlay, endpointOf, nodeFlagsOf, run, waitFor, waitNetwork, type DnsQueryResult, type LabHost } from '../lab/index.js';
import { SKIP_REASON, integrationEnabled, labForFile } from '../lab/suite.js';

/** The plugin's default resolver address. */
const R = '169.254.53.53';
const SESSION_MS = 4000;
const COLLECT_AFTER_MS = 5000;
const ORPHAN_GRACE_MS = 8000;
const SPREAD_WAIT_MS = 30_000;
const NAME_WAIT_MS = 20_000;
/** Session expiry + the delay + a few collection passes and a store round trip, with room for a loaded machine. */
const COLLECT_WAIT_MS = 60_000;

if (!integrationEnabled()) {
  t.plan(0, SKIP_REASON);
} else {
  await main();
}

async function main(): Promise<void> {
  const lab = await labForFile(t, {
    hosts: [{ name: 'h1' }, { name: 'h2' }, { name: 'h3' }],
    zookeeper: { servers: 1, tickTimeMs: 500 },
    dnsServer: true,
    plugin: {
      store: 'zk',
      zkSessionTimeoutMs: SESSION_MS,
      dnsUpstream: 'lab',
      args: ['--collect-after-ms', String(COLLECT_AFTER_MS), '--orphan-grace-ms', String(ORPHAN_GRACE_MS)],
    },
  }, {
    logLines: 150,
    beforeDestroy: async (lab) => {
      await lab.switchExec('ip', 'route', 'del', `${R}/32`).catch(() => undefined);
    },
  });
  if (!lab) return;
  const [h1, h2, h3] = [lab.host('h1'), lab.host('h2'), lab.host('h3')];
  const chroot = lab.zkChroot;
  try {
    await Promise.all([h1, h2, h3].map((h) => h.startPlugin()));
  } catch (e) {
    t.fail(`plugin did not start: ${e instanceof Error ? e.message : String(e)}`);
    return;
  }
  t.comment(`lab ${lab.id}: store ${lab.zkStore}, dockerd ${h1.engineVersion}`);

  // ------------------------------------------------------------------ helpers
  const zkGet = async (path: string): Promise<Record<string, unknown> | undefined> => {
    const r = await lab.zkRaw('get', `${chroot}${path}`);
    if (r.code === 3) return undefined;
    if (r.code !== 0) throw new Error(`zk get ${path}: ${r.stderr}`);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  };
  const zkChildren = async (path: string): Promise<string[]> => {
    const r = await lab.zkRaw('children', `${chroot}${path}`);
    if (r.code !== 0) throw new Error(`zk children ${path}: ${r.stderr}`);
    return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  };
  const zkCreate = async (path: string, value: unknown) => {
    const r = await lab.zkRaw('create', `${chroot}${path}`, JSON.stringify(value));
    if (r.code !== 0) throw new Error(`zk create ${path}: ${r.stderr}`);
  };
  /** The cluster key of a network, from its engine id (/netids/<id>). */
  const keyOf = async (h: LabHost, name: string) => {
    const id = (await h.docker('network', 'inspect', '-f', '{{.Id}}', name)).trim();
    return String((await zkGet(`/netids/${id}`))?.['network']);
  };
  /** Address claims of `node` (kind endpoint) in a pool. */
  const claimsOf = async (pool: string, node: string) => {
    const out: string[] = [];
    for (const ip of await zkChildren(`/pools/${pool}`)) {
      const a = await zkGet(`/pools/${pool}/${ip}`);
      if (a?.['node'] === node && a['kind'] === 'endpoint') out.push(ip);
    }
    return out.sort();
  };
  const endpointNodes = async (key: string) => Promise.all((await zkChildren(`/endpoints/${key}`)).map(async (e) => String((await zkGet(`/endpoints/${key}/${e}`))?.['node'])));
  const addrs = (r: DnsQueryResult | undefined) => (r?.answers ?? []).filter((a) => a.type === 'A').map((a) => a.data);
  /** Until the resolver, asked from `c` on `h`, answers `name` with `ip` (or, with `gone`, no longer does). */
  const resolves = async (h: LabHost, c: string, name: string, ip: string, gone = false): Promise<DnsQueryResult | undefined> => {
    let last: DnsQueryResult | undefined;
    const ok = await waitFor(async () => (last = await h.dnsQuery(c, R, name, { timeoutMs: 1500 })), {
      what: `${name} ${gone ? 'to stop resolving' : `to resolve to ${ip}`} from ${c}`,
      until: (r) => (gone ? r.rcode !== null && !addrs(r).includes(ip) : r.rcode === 'NOERROR' && addrs(r).includes(ip)),
      timeoutMs: NAME_WAIT_MS,
      intervalMs: 200,
    }).then(() => true, () => false);
    return ok ? last : undefined;
  };
  const cli = join(process.cwd(), 'dist', 'cli.js');
  /** `tsoverlay status --json` in the host's network namespace, with its plugin's options. */
  let lastStatus = '';
  const statusRun = async (h: LabHost, ...extra: string[]) =>
    run('nsenter', [
      `--net=/run/netns/${h.ns}`, '--', process.execPath, ...(await nodeFlagsOf(cli)), cli, 'status', ...extra,
      '--store', lab.zkStore ?? '', '--advertise', h.underlay, '--node-name', h.hostname, '--socket', h.pluginSocket,
    ], { timeoutMs: 30_000, env: { ...process.env, NO_COLOR: '1' } });
  const statusOf = async (h: LabHost): Promise<StatusReport | undefined> => {
    const r = await statusRun(h, '--json');
    lastStatus = `exit ${r.code} at ${new Date().toISOString()}: ${r.stderr.trim().slice(0, 300)}`;
    try {
      return JSON.parse(r.stdout) as StatusReport;
    } catch {
      return undefined;
    }
  };
  const pluginLogOf = async (h: LabHost) => (await h.plugin?.logTail(5000)) ?? '';
  const count = (text: string, re: RegExp) => text.split('\n').filter((l) => re.test(l)).length;

  // ------------------------------------------------------------------ cases

  await t.test('A. a node killed in the middle of docker run: its addresses are taken again, its names go', { timeout: 300_000 }, async (t: Test) => {
    await createOverlay(h1, 'gcnet', '10.50.0.0/29'); // .1 gateway, .2-.6 for containers
    for (const h of [h2, h3]) await waitNetwork(h, 'gcnet', SPREAD_WAIT_MS);
    const key = await keyOf(h1, 'gcnet');
    await h2.runSleeper('c2', '--net', 'gcnet');
    const c2 = await endpointOf(h2, 'c2', 'gcnet');
    await h3.runSleeper('g1', '--net', 'gcnet');
    await h3.runSleeper('g2', '--net', 'gcnet');
    const g1 = await endpointOf(h3, 'g1', 'gcnet');
    t.ok(await resolves(h2, 'c2', 'g1', g1.ip), `before: g1 (h3) resolves to ${g1.ip} from c2 (h2)`);

    const before = await claimsOf(key, h3.hostname);
    t.same(before, [g1.ip, (await endpointOf(h3, 'g2', 'gcnet')).ip].sort(), `h3 holds the addresses of g1 and g2 (${before.join(', ')})`);

    // a third docker run on h3, killed with its dockerd once the plugin has created the endpoint
    const created = count(await pluginLogOf(h3), /endpoint created/);
    const third = h3.dockerTry('run', '-d', '--name', 'g3', '--net', 'gcnet', BUSYBOX_IMAGE, ...SLEEPER);
    await waitFor(async () => count(await pluginLogOf(h3), /endpoint created/), { what: 'h3 to create the third endpoint', until: (n) => n > created, timeoutMs: 60_000, intervalMs: 10 });
    await h3.killPlugin();
    const killedAt = Date.now();
    // from now on, status on h1 (again and again) until it lists h3 as gone since a known time, and the record behind it
    let watching = true;
    let goneRow: NodeStatus | undefined;
    let goneRecord: Record<string, unknown> | undefined;
    const watcher = waitFor(async () => {
      goneRecord ??= await zkGet(`/gone/${h3.hostname}`).catch(() => undefined);
      const row = (await statusOf(h1))?.nodes.find((n) => n.name === h3.hostname);
      if (row?.state === 'gone' && row.goneSince && !goneRow) {
        goneRow = row;
        t.comment(`status on h1 while h3 is gone:\n${(await statusRun(h1)).stdout}`);
      }
      return goneRow !== undefined && goneRecord !== undefined;
    }, { what: 'status on h1 to list h3 as gone since a time', until: (seen) => seen || !watching, timeoutMs: COLLECT_WAIT_MS, intervalMs: 100 }).catch(() => false);

    await h3.crashDockerd();
    const r3 = await third;
    t.comment(`docker run g3 on h3: exit ${r3.code} ${r3.stderr.trim().split('\n')[0]?.slice(0, 200)}`);
    const thirdIp = /"ip":"([\d.]+)\/29"[^\n]*endpoint created/.exec((await pluginLogOf(h3)).split('\n').filter((l) => /endpoint created/.test(l)).pop() ?? '')?.[1];
    t.ok(thirdIp, `the third container's endpoint was created with ${thirdIp} before h3 died`);
    const leaked = [...before, ...(thirdIp ? [thirdIp] : [])].sort();

    // absence is not deletion at first: nothing goes before the session expiry + the delay
    const gone = await waitFor(async () => ({ claims: await claimsOf(key, h3.hostname), eps: await endpointNodes(key) }), {
      what: 'h3\'s records to be collected',
      until: (s) => s.claims.length === 0 && !s.eps.includes(h3.hostname),
      timeoutMs: COLLECT_WAIT_MS,
      intervalMs: 250,
    }).then(() => true, () => false);
    t.ok(gone, 'h3\'s endpoint records and address claims are collected');
    const lines = [await pluginLogOf(h1), await pluginLogOf(h2)].join('\n').split('\n').filter((l) => /collected: endpoint of a gone node/.test(l));
    const collectedAt = Math.max(...lines.map((l) => Number(/"time":(\d+)/.exec(l)?.[1] ?? 0)));
    const seconds = (collectedAt - killedAt) / 1000;
    t.comment(`collected ${seconds.toFixed(1)} s after h3's plugin was killed (session ${SESSION_MS} ms + delay ${COLLECT_AFTER_MS} ms)`);
    t.ok(seconds * 1000 >= SESSION_MS + COLLECT_AFTER_MS - 500, `not before its session expired and the delay passed (${seconds.toFixed(1)} s)`);
    t.same(leaked.filter((ip) => !lines.some((l) => l.includes(`"ip":"${ip}"`))), [], `each endpoint logged as collected with its address (${lines.length} lines)`);
    watching = false;
    await watcher;
    const goneAt = Date.parse(String(goneRow?.goneSince));
    t.ok(goneRow, `status on h1 listed h3 as gone since ${goneRow?.goneSince} while its records were still there`, { row: goneRow, lastStatus });
    t.ok(goneAt >= killedAt && goneAt <= collectedAt, `that time is after the kill and before the collection (${((goneAt - killedAt) / 1000).toFixed(1)} s after the kill)`);
    t.match(goneRecord, { node: h3.hostname, since: goneRow?.goneSince, by: new RegExp(`^(${h1.hostname}|${h2.hostname})$`) }, '/gone/<h3> holds that time and the collecting node');
    const unrecorded = await waitFor(async () => (await zkGet(`/gone/${h3.hostname}`)) === undefined, {
      what: 'the gone record of h3 to go once nothing names h3', until: (g) => g, timeoutMs: 20_000, intervalMs: 250,
    }).then(() => true, () => false);
    t.ok(unrecorded, 'collected and named by nothing: its gone record is removed too (no leak)');
    const pool = await zkGet(`/pools/${key}`);
    t.notOk((pool?.['users'] as string[] | undefined)?.includes(h3.hostname), `h3 is no longer a user of the pool (${JSON.stringify(pool?.['users'])})`);
    const net = await zkGet(`/networks/${key}`);
    t.notOk(Object.values((net?.['aliases'] as Record<string, string> | undefined) ?? {}).includes(h3.hostname), 'h3\'s engine alias is gone from the network');

    t.ok(await resolves(h2, 'c2', 'g1', g1.ip, true), 'g1 no longer resolves from c2');

    // every address the dead containers held can be taken again: fill the pool from h1
    const taken: string[] = [];
    for (let i = 1; i <= 5; i++) {
      const r = await h1.dockerTry('run', '-d', '--name', `f${i}`, '--net', 'gcnet', BUSYBOX_IMAGE, ...SLEEPER);
      if (r.code !== 0) {
        t.comment(`docker run f${i} on h1: ${r.stderr.trim().slice(0, 200)}`);
        break;
      }
      taken.push((await endpointOf(h1, `f${i}`, 'gcnet')).ip);
    }
    t.same(leaked.filter((ip) => !taken.includes(ip)), [], `h1 took every address h3 had held (${leaked.join(', ')}); h1 got ${taken.join(', ')}`);
    t.equal(taken.length, 4, 'the /29 holds exactly c2 and four new containers: nothing else leaked');
    t.ok(taken.every((ip) => ip !== c2.ip), 'c2\'s address was never handed out again');
    t.ok((await endpointNodes(key)).includes(h2.hostname), 'the live node h2 keeps its endpoint record');
    const p = await h1.ping('f1', c2.ip, { count: 3, timeout: 2 });
    t.ok(p.ok, `f1 (h1) reaches c2 (h2) at ${c2.ip}`, { output: p.output });
  });

  await t.test('B. an endpoint record without a Docker endpoint, found at its node\'s next start, is collected after the grace', { timeout: 180_000 }, async (t: Test) => {
    await createOverlay(h1, 'gcorph', '10.50.1.0/29');
    await waitNetwork(h2, 'gcorph', SPREAD_WAIT_MS);
    const key = await keyOf(h1, 'gcorph');
    await h2.runSleeper('o2', '--net', 'gcorph');
    // what a CreateEndpoint on h1 leaves when Docker never gets to Join or forgets the endpoint
    const id = 'deadbeef'.padEnd(64, '7');
    const ip = '10.50.1.6';
    await zkCreate(`/pools/${key}/${ip}`, { ip, kind: 'endpoint', node: h1.hostname });
    const wroteAt = Date.now();
    await zkCreate(`/endpoints/${key}/${id}`, { id, networkId: key, node: h1.hostname, ipv4: `${ip}/29`, mac: '02:42:0a:32:01:06', hostIf: `tsh${id.slice(0, 11)}`, containerIf: `tsc${id.slice(0, 11)}` });
    await zkCreate(`/dnsnames/${key}/${id}`, { endpointId: id, network: key, node: h1.hostname, containerId: 'f'.repeat(64), name: 'ghost', aliases: [], ipv4: ip });
    t.ok(await resolves(h2, 'o2', 'ghost', ip), 'the orphan\'s name resolves while its record is there');
    // h1 runs nothing on gcorph, so it does not follow it: a record of h1's
    // that h1's running plugin did not create (an earlier run's: a crash
    // between the store write and Docker's next call) is found by the scan
    // of the plugin's next start, which makes h1 take part again.
    await h1.restartPlugin();
    const gone = await waitFor(async () => (await zkGet(`/endpoints/${key}/${id}`)) === undefined, {
      what: 'the orphan record to be collected', until: (g) => g, timeoutMs: COLLECT_WAIT_MS, intervalMs: 100,
    }).then(() => true, () => false);
    const line = (await pluginLogOf(h1)).split('\n').find((l) => /collected: endpoint record without a Docker endpoint/.test(l) && l.includes(id));
    const seconds = (Number(/"time":(\d+)/.exec(line ?? '')?.[1] ?? 0) - wroteAt) / 1000;
    t.ok(gone && line, `h1 removed the endpoint record its engine does not have, ${seconds.toFixed(1)} s after it was written, and logged it`);
    t.ok(seconds * 1000 >= ORPHAN_GRACE_MS, `not within the grace (${ORPHAN_GRACE_MS} ms)`);
    t.equal(await zkGet(`/pools/${key}/${ip}`), undefined, 'its address claim is released');
    t.ok(await resolves(h2, 'o2', 'ghost', ip, true), 'its name no longer resolves');
    const r = await h2.dockerTry('run', '-d', '--name', 'o6', '--net', 'gcorph', '--ip', ip, BUSYBOX_IMAGE, ...SLEEPER);
    t.equal(r.code, 0, `a container on h2 takes ${ip} again`, { stderr: r.stderr });
    t.ok((await endpointNodes(key)).filter((n) => n === h2.hostname).length === 2, 'h2\'s real endpoints are kept');
  });
}
