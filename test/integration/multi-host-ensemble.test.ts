// tsoverlay on a three-server ZooKeeper ensemble: two Docker hosts, a network
// and cross-host traffic, then the ZooKeeper leader is killed (SIGKILL) and
// everything must keep working on the remaining quorum: running traffic, new
// containers, cross-host pings, network create. Then each plugin's metrics
// (--metrics-address on loopback in its host's namespace) are scraped and
// checked against what its host's kernel and Docker calls say. Then the whole
// ensemble is stopped: GET /ready must say 503 with the reason within seconds,
// and 200 again once it is back. Last, the plugins' own logs of the whole run:
// one key each per line, the node on every line, the resolver's start told once.
// Needs root, TSOVERLAY_IT=1 and a built plugin (npm run build).
import { readFileSync } from 'node:fs';
import t, { type Test } from 'tap';
import { repeatedKeys } from '../helpers/json-keys.js';
import { BUSYBOX_IMAGE, createOverlay, endpointOf, pingUntilOk, readPluginLog, SLEEPER, waitFor, waitNetwork, type LabHost } from '../lab/index.js';
import { SKIP_REASON, integrationEnabled, labForFile } from '../lab/suite.js';

const SESSION_MS = 6000;
/** Where every plugin serves its metrics: loopback of its own host's namespace. */
const METRICS = '127.0.0.1:9464';

if (!integrationEnabled()) {
  t.plan(0, SKIP_REASON);
} else {
  await main();
}

async function main(): Promise<void> {
  const lab = await labForFile(t, {
    hosts: [{ name: 'h1', mtu: 1500 }, { name: 'h2', mtu: 1500 }],
    zookeeper: { servers: 3, tickTimeMs: 500 },
    plugin: { store: 'zk', zkSessionTimeoutMs: SESSION_MS, args: ['--metrics-address', METRICS] },
  }, { logLines: 120 });
  if (!lab) return;
  const zk = lab.zk!;
  const [h1, h2] = [lab.host('h1'), lab.host('h2')];
  try {
    await Promise.all([h1.startPlugin(), h2.startPlugin()]);
  } catch (e) {
    t.fail(`plugin did not start: ${e instanceof Error ? e.message : String(e)}`);
    return;
  }
  t.comment(`lab ${lab.id}: store ${lab.zkStore}`);

  const reaches = async (t: Test, h: LabHost, from: string, ip: string, msg: string) => {
    const e = await pingUntilOk(h, from, ip, 15_000);
    if (!t.ok(e.ok, `${msg}: reachable (after ${e.tries} tries, ${e.elapsedMs} ms)`, { output: e.last?.output })) return;
    const r = await h.ping(from, ip, { count: 3, interval: 0.1, timeout: 2 });
    t.ok(r.ok && r.received === 3, `${msg}: 3 pings answered`, { output: r.output });
  };

  /** docker run, retried while the store is being failed over (bounded). */
  const runEventually = async (h: LabHost, name: string, net: string) => {
    let attempts = 0;
    const t0 = Date.now();
    await waitFor(async () => {
      attempts++;
      const r = await h.dockerTry('run', '-d', '--name', name, '--net', net, BUSYBOX_IMAGE, ...SLEEPER);
      if (r.code !== 0) {
        await h.removeContainer(name);
        throw new Error(r.stderr.trim());
      }
      return true;
    }, { what: `docker run ${name} on ${h.name}`, timeoutMs: 60_000, intervalMs: 250 });
    return { attempts, ms: Date.now() - t0 };
  };

  t.test('network and cross-host ping on the ensemble', { timeout: 120_000 }, async (t) => {
    const modes = await Promise.all(zk.servers.map(async (s) => `zk${s.id}=${await zk.mode(s.id)}`));
    t.comment(`ensemble: ${modes.join(' ')}`);
    const n = await createOverlay(h1, 'ne', '10.40.1.0/24');
    const t0 = Date.now();
    await waitNetwork(h2, 'ne', 45_000);
    t.ok(Date.now() - t0 <= 5000, `ne on h2 after ${Date.now() - t0} ms`);
    t.ok((await h2.tsLinks()).includes(n.vxlan), `h2 has the same VXLAN device ${n.vxlan}`);
    await h1.runSleeper('e1', '--net', 'ne');
    await h2.runSleeper('e2', '--net', 'ne');
    const e1 = await endpointOf(h1, 'e1', 'ne');
    const e2 = await endpointOf(h2, 'e2', 'ne');
    await reaches(t, h1, 'e1', e2.ip, 'h1 e1 -> h2 e2');
    await reaches(t, h2, 'e2', e1.ip, 'h2 e2 -> h1 e1');
  });

  t.test('the ZooKeeper leader is killed: everything keeps working', { timeout: 240_000 }, async (t) => {
    const leader = await zk.leader();
    if (!t.ok(leader, `found the leader: zk${leader}`)) return;
    const e1 = await endpointOf(h1, 'e1', 'ne');
    const e2 = await endpointOf(h2, 'e2', 'ne');
    const pids = [h1.plugin?.pid, h2.plugin?.pid];
    const stream = await h1.pingStream('e1', e2.ip, { interval: 0.02 });
    try {
      await stream.waitReplies(25, 10_000);
      const k0 = Date.now();
      await zk.killServer(leader!);
      t.comment(`zk${leader} (leader) killed with SIGKILL`);
      const others = zk.servers.map((s) => s.id).filter((id) => id !== leader);
      const newLeader = await waitFor(() => zk.leader(), { what: 'a new leader among the other two', timeoutMs: 60_000, intervalMs: 200 });
      t.ok(newLeader !== undefined && others.includes(newLeader), `zk${newLeader} leads now (${Date.now() - k0} ms after the kill)`);

      const r1 = await runEventually(h1, 'e3', 'ne');
      t.pass(`new container e3 on h1 (${r1.attempts} attempt(s), ${r1.ms} ms; ${Date.now() - k0} ms after the kill)`);
      await reaches(t, h1, 'e3', e2.ip, 'new h1 e3 -> h2 e2');
      await reaches(t, h2, 'e2', (await endpointOf(h1, 'e3', 'ne')).ip, 'h2 e2 -> new h1 e3');
      const r2 = await runEventually(h2, 'e4', 'ne');
      t.pass(`new container e4 on h2 (${r2.attempts} attempt(s), ${r2.ms} ms)`);
      await reaches(t, h2, 'e4', e1.ip, 'new h2 e4 -> h1 e1');

      const create = await h1.dockerTry('network', 'create', '-d', 'tsoverlay', '--ipam-driver', 'tsoverlay', '--subnet', '10.40.2.0/24', 'ne2');
      t.equal(create.code, 0, 'docker network create works', { stderr: create.stderr });
      const c0 = Date.now();
      const on2 = await waitNetwork(h2, 'ne2', 45_000).then(() => true, () => false);
      t.ok(on2 && Date.now() - c0 <= 5000, `ne2 appears on h2 (${Date.now() - c0} ms)`);
      if (on2) {
        await h1.runSleeper('f1', '--net', 'ne2');
        await h2.runSleeper('f2', '--net', 'ne2');
        await reaches(t, h1, 'f1', (await endpointOf(h2, 'f2', 'ne2')).ip, 'on ne2: h1 f1 -> h2 f2');
      }

      const r = await stream.stop();
      t.comment(`ping e1 -> e2 across the leader kill: ${r.transmitted} sent, ${r.received} received`);
      t.equal(r.lossPercent, 0, 'existing cross-host ping lost nothing', { output: r.output.slice(-500) });
      t.same([h1.plugin?.pid, h2.plugin?.pid], pids, 'no plugin was restarted');
      t.ok(h1.plugin?.running && h2.plugin?.running, 'both plugins still running');
    } finally {
      if (stream.proc.running) await stream.stop();
    }
  });

  /** GET a path of a plugin's metrics listener, from inside its host's namespace. */
  const scrape = async (h: LabHost, path: string): Promise<{ status: number; body: string }> => {
    const r = await h.hostExec('curl', '-s', '--max-time', '5', '-o', '-', '-w', '\n%{http_code}', `http://${METRICS}${path}`);
    const cut = r.stdout.lastIndexOf('\n');
    return { status: Number(r.stdout.slice(cut + 1)), body: r.stdout.slice(0, cut) };
  };
  /** The value of `series` (name with its labels, as printed) in an exposition text; undefined if absent. */
  const value = (text: string, series: string): number | undefined => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };

  t.test('metrics: each plugin\'s scrape matches its Docker calls and its kernel', { timeout: 120_000 }, async (t) => {
    const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
    // a name of h2's container, asked of h1's node resolver (the default --dns-address) until it answers
    const e2 = await endpointOf(h2, 'e2', 'ne');
    const named = await waitFor(async () => {
      const r = await h1.dnsQuery('e1', '169.254.53.53', 'e2', { timeoutMs: 1500 });
      if (r.rcode !== 'NOERROR' || !r.answers.some((a) => a.data === e2.ip)) throw new Error(`answer ${r.rcode ?? r.error}`);
      return true;
    }, { what: 'h1 resolver to answer e2', timeoutMs: 15_000, intervalMs: 500 }).then(() => true, () => false);
    t.ok(named, `h1's resolver answers e2 -> ${e2.ip}`);
    for (const h of [h1, h2]) {
      const live = await scrape(h, '/live');
      t.equal(live.status, 200, `${h.name}: GET /live 200`);
      const ready = await scrape(h, '/ready');
      t.equal(ready.status, 200, `${h.name}: GET /ready 200 (${ready.body.trim()})`);
      t.equal((await scrape(h, '/NetworkDriver.Join')).status, 404, `${h.name}: anything else 404`);

      // the programmed gauges are set after each pass without failures: wait until one has seen the kernel as it is now
      let last = '';
      let kernel = { fdb: -1, neigh: -1, links: -1 };
      const matched = await waitFor(async () => {
        const m = await scrape(h, '/metrics');
        last = m.body;
        const fdb = (await h.fdbEntries()).filter((e) => e.dst !== undefined).length;
        const neigh = (await h.neighEntries()).filter((e) => e.state === 'PERMANENT').length;
        kernel = { fdb, neigh, links: (await h.tsLinks()).length };
        const gauges = {
          fdb: value(last, 'tsoverlay_programmed_fdb_entries'),
          neigh: value(last, 'tsoverlay_programmed_neighbour_entries'),
          links: value(last, 'tsoverlay_programmed_links'),
        };
        if (gauges.fdb !== kernel.fdb || gauges.neigh !== kernel.neigh || gauges.links !== kernel.links) {
          throw new Error(`gauges ${JSON.stringify(gauges)}, kernel ${JSON.stringify(kernel)}`);
        }
        return true;
      }, { what: `${h.name}: programmed gauges equal to the kernel's entries`, timeoutMs: 20_000, intervalMs: 500 }).then(() => true, (e: unknown) => (t.comment(String(e)), false));
      t.ok(matched, `${h.name}: programmed gauges = kernel: ${kernel.fdb} FDB entries with a VTEP, ${kernel.neigh} permanent neighbours, ${kernel.links} ts* links`);
      t.ok(kernel.fdb > 0, `${h.name}: there are remote entries to count (${kernel.fdb})`);

      for (const method of ['NetworkDriver.CreateEndpoint', 'NetworkDriver.Join', 'IpamDriver.RequestAddress']) {
        const n = value(last, `tsoverlay_docker_calls_total{method="${method}"}`) ?? 0;
        t.ok(n > 0, `${h.name}: ${method} counted (${n})`);
        t.ok((value(last, `tsoverlay_docker_call_duration_seconds_count{method="${method}"}`) ?? 0) === n, `${h.name}: ${method} timed once per call`);
      }
      const ok = value(last, 'tsoverlay_reconcile_passes_total{result="ok"}') ?? 0;
      t.ok(ok > 0, `${h.name}: ${ok} reconcile passes ok (failed: ${value(last, 'tsoverlay_reconcile_passes_total{result="failed"}') ?? 0})`);
      t.ok((value(last, 'tsoverlay_reconcile_pass_duration_seconds_count') ?? 0) >= ok, `${h.name}: pass durations observed`);
      t.equal(value(last, `tsoverlay_build_info{version="${version}"}`), 1, `${h.name}: build_info has version ${version}`);
      t.equal(value(last, 'tsoverlay_zk_session_state{state="connected"}'), 1, `${h.name}: ZooKeeper session connected`);
      const gets = value(last, 'tsoverlay_zk_request_duration_seconds_count{op="get"}') ?? 0;
      const commits = value(last, 'tsoverlay_zk_request_duration_seconds_count{op="commit"}') ?? 0;
      t.ok(gets > 0 && commits > 0, `${h.name}: ZooKeeper requests timed (${gets} get, ${commits} commit; reconnects resumed ${value(last, 'tsoverlay_zk_reconnects_total{kind="resumed"}') ?? 0})`);
      t.match(last, /^process_resident_memory_bytes \d+/m, `${h.name}: process metrics`);
      if (h === h1) {
        const queries = value(last, 'tsoverlay_dns_queries_total{transport="udp"}') ?? 0;
        const answers = value(last, 'tsoverlay_dns_answers_total') ?? 0;
        t.ok(queries >= 1 && answers >= 1 && answers <= queries, `h1: resolver queries counted (${queries} over UDP, ${answers} answered)`);
      }
      if (h === h1) t.comment(`h1 scrape (tsoverlay_ lines):\n${last.split('\n').filter((l) => l.startsWith('tsoverlay_') && !l.includes('_bucket')).join('\n')}`);
    }
  });

  t.test('the whole ensemble stopped: /ready 503 with the reason within seconds, 200 again after it restarts', { timeout: 240_000 }, async (t) => {
    interface ReadyAnswer { Ready?: boolean; Err?: string; Reasons?: string[] }
    const ask = async (h: LabHost, path: string) => {
      const r = await h.pluginRequest(path, undefined, { method: 'GET', timeoutMs: 2000 });
      return { status: r.status, json: r.json as ReadyAnswer };
    };
    for (const h of [h1, h2]) t.equal((await ask(h, '/ready')).status, 200, `${h.name}: ready before the outage`);
    const running = zk.servers.map((s) => s.id).filter((id) => zk.isRunning(id));
    await Promise.all(running.map((id) => zk.stopServer(id)));
    const stoppedAt = Date.now();
    t.comment(`stopped zk${running.join(', zk')}: no ZooKeeper server runs`);
    const down = await Promise.all([h1, h2].map((h) => waitFor(async () => {
      const r = await ask(h, '/ready');
      if (r.status !== 503) throw new Error(`/ready still ${r.status}`);
      return { ...r, ms: Date.now() - stoppedAt };
    }, { what: `${h.name}: GET /ready 503`, timeoutMs: 20_000, intervalMs: 100 }).catch((e: unknown) => ({ status: 0, json: {} as ReadyAnswer, ms: -1, error: String(e) }))));
    for (const [i, h] of [h1, h2].entries()) {
      const d = down[i]!;
      t.ok(d.ms >= 0 && d.ms <= 6000, `${h.name}: /ready 503 ${d.ms} ms after the ensemble stopped (2 s grace)`, { answer: d.json });
      t.match(d.json, { Ready: false, Err: /^zookeeper: ZooKeeper connection lost since \S+Z/, Reasons: [/^zookeeper: /] }, `${h.name}: the reason is named: ${d.json.Err}`);
      t.equal((await ask(h, '/live')).status, 200, `${h.name}: GET /live 200 while not ready`);
    }

    const startedAt = Date.now();
    await Promise.all(zk.servers.map((s) => zk.startServer(s.id)));
    await zk.waitReady(60_000);
    t.comment(`ensemble serving again ${Date.now() - startedAt} ms after the start (down for ${startedAt - stoppedAt} ms)`);
    const up = await Promise.all([h1, h2].map((h) => waitFor(async () => {
      const r = await ask(h, '/ready');
      if (r.status !== 200) throw new Error(`/ready ${r.status} ${r.json.Err ?? ''}`);
      return Date.now() - startedAt;
    }, { what: `${h.name}: GET /ready 200 again`, timeoutMs: 60_000, intervalMs: 100 }).catch(() => -1)));
    for (const [i, h] of [h1, h2].entries()) {
      t.ok(up[i]! >= 0, `${h.name}: /ready 200 again ${up[i]} ms after the servers were started`);
      // the log line and the /ready answer are written side by side: wait for the line to reach the file
      const readTold = async () => (await readPluginLog(h.pluginLog)).filter((l) => (l.json['time'] as number) >= stoppedAt && l.json['component'] === 'health');
      const told = await waitFor(readTold, { what: `${h.name}: "ready again" in the log`, until: (ls) => ls.some((l) => l.json['msg'] === 'ready again'), timeoutMs: 5000, intervalMs: 100 })
        .catch(readTold);
      const notReady = told.filter((l) => String(l.json['msg']).startsWith('not ready: '));
      t.match(notReady[0]?.json, { level: 40, msg: /^not ready: zookeeper: /, reasons: [/^zookeeper: /] }, `${h.name}: the change to not ready is logged with the reason`);
      t.ok(notReady.every((l, j) => j === 0 || l.json['msg'] !== notReady[j - 1]!.json['msg']), `${h.name}: each change logged once (${notReady.map((l) => l.json['msg']).join(' | ')})`);
      t.equal(told.filter((l) => l.json['msg'] === 'ready again').length, 1, `${h.name}: "ready again" logged once`);
    }
    t.ok(h1.plugin?.running && h2.plugin?.running, 'both plugins still running');
  });

  t.test('the plugin logs of this run: each key once, the node on every line, one line per event', async (t) => {
    for (const h of [h1, h2]) {
      const lines = await readPluginLog(h.pluginLog);
      t.ok(lines.length > 50, `${h.name}: ${lines.length} JSON lines in ${h.pluginLog}`);
      const repeated = lines.flatMap((l) => (repeatedKeys(l.text).length ? [`${repeatedKeys(l.text).join(',')}: ${l.text.slice(0, 300)}`] : []));
      t.same(repeated, [], `${h.name}: no line repeats a key`);
      const nodeless = lines.filter((l) => l.json['node'] !== h.hostname).map((l) => l.text.slice(0, 300));
      t.same(nodeless, [], `${h.name}: every line says node ${h.hostname}`);
      const components = new Set(lines.map((l) => l.json['component']).filter((c) => c !== undefined));
      // (the engine's lines, when there are any, are held to the same rule above)
      for (const c of ['zookeeper', 'netlink', 'firewall', 'reconcile', 'server']) t.ok(components.has(c), `${h.name}: lines of component ${c} seen (and they name the node)`);
      for (const msg of ['tsoverlay starting', 'resolver listening', 'tsoverlay ready']) {
        const per = new Map<number, number>();
        for (const l of lines) if (l.json['msg'] === msg) per.set(l.start, (per.get(l.start) ?? 0) + 1);
        t.ok(per.size > 0 && [...per.values()].every((n) => n === 1), `${h.name}: "${msg}" once per plugin start (${[...per.values()].join(',')})`);
      }
      const starting = lines.find((l) => l.json['msg'] === 'tsoverlay starting');
      t.match(starting?.json, { version: /^\d+\.\d+\.\d+/ }, `${h.name}: the start-up line has the version`);
    }
  });
}
