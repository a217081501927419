// Names across nodes: every node's plugin runs a resolver on 169.254.53.53
// that answers the names (container name, --network-alias, NAME.NETWORK) and
// PTRs of every endpoint of the querier's tsoverlay networks on any node, and
// forwards everything else to --dns-upstream. Docker's embedded DNS
// (127.0.0.11) forwards what it does not know to the daemon's --dns servers,
// so each lab dockerd runs with --dns 169.254.53.53.
//
// Also: PTRs, isolation between networks, forwarding, --internal networks,
// malformed packets, no access from outside the node, a removed container's
// names going away, how fast a new name reaches the other node, and the
// others on a node keeping the resolver when a container leaves (bridge MAC).
//
// One lab for the whole file: h1, h2 + one ZooKeeper server; the lab's own DNS
// server (switch namespace, outside.example -> 203.0.113.7, NXDOMAIN for the
// rest) is every plugin's --dns-upstream, so no query ever leaves the machine.
// Needs root, TSOVERLAY_IT=1 and a built plugin (npm run build).
import t, { type Test } from 'tap';
import { createOverlay, endpointOf, ifaceWithIp, LabDnsServer, percentile, waitFor, waitNetwork, run, type DnsQueryResult, type LabHost, type OverlayNet, type PingResult, type RunResult } from '../lab/index.js';
import { SKIP_REASON, integrationEnabled, labForFile } from '../lab/suite.js';

/** The plugin's default resolver address. */
const R = '169.254.53.53';
const OUTSIDE_NAME = 'outside.example';
const OUTSIDE_IP = LabDnsServer.DEFAULT_RECORDS[OUTSIDE_NAME]!;
/** How long a name may take to appear (or go) anywhere: names publish asynchronously. */
const NAME_WAIT_MS = 20_000;
/** The same once the resolver has been seen not answering at all (so a broken build fails fast). */
const BROKEN_WAIT_MS = 2_000;
const CONVERGENCE_RUNS = 12;

if (!integrationEnabled()) {
  t.plan(0, SKIP_REASON);
} else {
  await main();
}

async function main(): Promise<void> {
  const lab = await labForFile(t, {
    hosts: [{ name: 'h1' }, { name: 'h2' }],
    zookeeper: { servers: 1, tickTimeMs: 500 },
    dnsServer: true,
    dockerDns: [R],
    plugin: { store: 'zk', zkSessionTimeoutMs: 4000, dnsUpstream: 'lab' },
  },
  {
    logLines: 150,
    beforeDestroy: async (lab) => {
      await lab.switchExec('ip', 'route', 'del', `${R}/32`).catch(() => undefined);
    },
  });
  if (!lab) return;
  const [h1, h2] = [lab.host('h1'), lab.host('h2')];
  try {
    await Promise.all([h1.startPlugin(), h2.startPlugin()]);
  } catch (e) {
    t.fail(`plugin did not start: ${e instanceof Error ? e.message : String(e)}`);
    return;
  }
  t.comment(`lab ${lab.id}: underlay ${lab.subnet}, store ${lab.zkStore}, upstream ${lab.dnsServer?.address}, dockerd --dns ${h1.dockerDns.join(',')}`);

  // ------------------------------------------------------------------ helpers

  const nets = new Map<string, OverlayNet>();
  const known = async (): Promise<string[]> => (await Promise.all([h1, h2].map((h) => h.tsLinks()))).flat().filter((l) => l.startsWith('tsvx-'));
  /** A network made on h1 (once), waited for on h2. */
  const ensureNet = async (name: string, subnet: string, ...args: string[]): Promise<OverlayNet> => {
    let n = nets.get(name);
    if (!n) {
      n = await createOverlay(h1, name, subnet, { args, known: await known() });
      nets.set(name, n);
    }
    await waitNetwork(h2, name, 30_000);
    return n;
  };
  const exists = async (h: LabHost, c: string) => (await h.dockerTry('container', 'inspect', c)).code === 0;
  const ensureContainer = async (h: LabHost, name: string, net: string, ...args: string[]) => {
    if (!(await exists(h, name))) await h.runSleeper(name, '--net', net, ...args);
    return endpointOf(h, name, net);
  };

  /** Set when the resolver did not answer a container at all: later waits are short. */
  let resolverDown = false;
  const waitMs = () => (resolverDown ? BROKEN_WAIT_MS : NAME_WAIT_MS);

  interface Eventually<T> { ok: boolean; value: T | undefined; ms: number; error?: string }
  /** Probe until `until` holds or timeoutMs passes; never throws. */
  const eventually = async <T>(probe: () => Promise<T>, until: (v: T) => boolean, what: string, timeoutMs = waitMs()): Promise<Eventually<T>> => {
    const t0 = Date.now();
    let value: T | undefined;
    try {
      await waitFor(async () => (value = await probe()), { what, until, timeoutMs, intervalMs: 150 });
      return { ok: true, value, ms: Date.now() - t0 };
    } catch (e) {
      return { ok: false, value, ms: Date.now() - t0, error: e instanceof Error ? e.message.slice(0, 2000) : String(e) };
    }
  };

  /** busybox ping -c1 NAME inside the container (name resolved through 127.0.0.11); the address it resolved to. */
  const pingByName = (h: LabHost, from: string, name: string) => h.ping(from, name, { viaDockerExec: true, count: 1, timeout: 1 });
  const resolvedIp = (r: PingResult | undefined) => /^PING \S+ \(([\d.]+)\)/m.exec(r?.output ?? '')?.[1];

  /** Until `from` on h pings `name` and it resolved to `ip`. */
  const pingsByName = async (t: Test, h: LabHost, from: string, name: string, ip: string) => {
    const e = await eventually(() => pingByName(h, from, name), (r) => r.ok && resolvedIp(r) === ip, `${from} to ping ${name}`);
    t.ok(e.ok, `${h.name} ${from}: ping ${name} -> ${ip} (after ${e.ms} ms)`, { output: e.value?.output, error: e.error });
    return e.ok;
  };

  const nslookup = (h: LabHost, c: string, ...args: string[]) => h.dockerTry('exec', c, 'nslookup', ...args);
  const out = (r: RunResult | undefined) => (r ? `${r.stdout}${r.stderr}`.trim() : '(none)');

  const directA = (h: LabHost, c: string, name: string, opts: { tcp?: boolean; type?: string; timeoutMs?: number } = {}) =>
    h.dnsQuery(c, R, name, { timeoutMs: 1500, ...opts });
  const addrs = (r: DnsQueryResult | undefined, type = 'A') => (r?.answers ?? []).filter((a) => a.type === type).map((a) => a.data);
  const answersWith = (ip: string) => (r: DnsQueryResult) => r.rcode === 'NOERROR' && addrs(r).includes(ip);

  // ------------------------------------------------------------- the scenario

  const NET = 'ovr';
  let web1: { ip: string } | undefined;
  let web2: { ip: string } | undefined;

  t.test('nginx_web_1 (h1) and nginx_web_2 (h2) ping each other by name, alias and NAME.NETWORK', { timeout: 120_000 }, async (t) => {
    await ensureNet(NET, '10.40.1.0/24');
    // literally the issue's scenario (busybox sleepers named like compose would)
    web1 = await ensureContainer(h1, 'nginx_web_1', NET, '--network-alias', 'web1');
    web2 = await ensureContainer(h2, 'nginx_web_2', NET, '--network-alias', 'web2');
    t.comment(`nginx_web_1 ${web1.ip} on h1, nginx_web_2 ${web2.ip} on h2`);
    // the route to the resolver the plugin gave the container
    const routes = await h1.nsSh('nginx_web_1', 'ip', '-4', 'route', 'show');
    t.match(routes, new RegExp(`^${R.replace(/\./g, '\\.')} dev eth\\d+ .*scope link`, 'm'), `nginx_web_1 has an on-link route to ${R}`, { routes });
    const resolv = (await h1.docker('exec', 'nginx_web_1', 'cat', '/etc/resolv.conf'));
    t.match(resolv, /nameserver 127\.0\.0\.11/, 'the container resolves through Docker\'s embedded DNS', { resolv });
    // is there a resolver at all? (any reply, e.g. the upstream's answer for an outside name)
    const up = await eventually(() => directA(h1, 'nginx_web_1', OUTSIDE_NAME), (r) => r.ok, `any reply from ${R} to nginx_web_1`);
    if (!t.ok(up.ok, `the resolver at ${R} answers nginx_web_1 (after ${up.ms} ms)`, { result: up.value, error: up.error })) resolverDown = true;

    if (!(await pingsByName(t, h1, 'nginx_web_1', 'nginx_web_2', web2.ip))) return;
    await pingsByName(t, h2, 'nginx_web_2', 'nginx_web_1', web1.ip);
    await pingsByName(t, h1, 'nginx_web_1', 'web2', web2.ip);
    await pingsByName(t, h2, 'nginx_web_2', 'web1', web1.ip);
    await pingsByName(t, h1, 'nginx_web_1', `nginx_web_2.${NET}`, web2.ip);
    await pingsByName(t, h2, 'nginx_web_2', `nginx_web_1.${NET}`, web1.ip);
    await pingsByName(t, h1, 'nginx_web_1', `web2.${NET}`, web2.ip);
    // names match case-insensitively
    await pingsByName(t, h1, 'nginx_web_1', 'NGINX_WEB_2', web2.ip);

    const ns = await nslookup(h1, 'nginx_web_1', 'nginx_web_2');
    t.ok(ns.code === 0 && ns.stdout.includes(web2.ip), `busybox nslookup nginx_web_2 in nginx_web_1 gives ${web2.ip}`, { output: out(ns) });
    // straight at the resolver, UDP and TCP
    for (const tcp of [false, true]) {
      const r = await directA(h2, 'nginx_web_2', 'nginx_web_1', { tcp });
      t.same(addrs(r), [web1.ip], `${tcp ? 'TCP' : 'UDP'} query to ${R} from nginx_web_2: nginx_web_1 A ${web1.ip}`, { result: r });
    }
  });

  t.test('PTR of the remote container\'s address gives its name', { timeout: 60_000 }, async (t) => {
    if (!web2 || !web1) { t.fail('no scenario containers (first case failed)'); return; }
    const ip2 = web2.ip;
    // through Docker's embedded DNS (127.0.0.11 forwards the PTR it cannot answer)
    const viaDocker = await eventually(() => nslookup(h1, 'nginx_web_1', ip2), (r) => /name = nginx_web_2\b/.test(r.stdout),
      `PTR ${ip2} via 127.0.0.11`);
    t.ok(viaDocker.ok, `busybox nslookup ${ip2} in nginx_web_1 (via 127.0.0.11): name = nginx_web_2`, { output: out(viaDocker.value), error: viaDocker.error });
    // busybox nslookup at the resolver itself
    const viaR = await nslookup(h1, 'nginx_web_1', ip2, R);
    t.match(viaR.stdout, /name = nginx_web_2\b/, `busybox nslookup ${ip2} ${R}: name = nginx_web_2`, { output: out(viaR) });
    const direct = await directA(h2, 'nginx_web_2', web1.ip, { type: 'PTR' });
    t.same(direct.answers.filter((a) => a.type === 'PTR').map((a) => a.data), ['nginx_web_1'], `direct PTR query from h2: ${web1.ip} -> nginx_web_1`, { result: direct });
  });

  t.test('a container on another network resolves none of the ovr names', { timeout: 90_000 }, async (t) => {
    if (!web2 || !web1) { t.fail('no scenario containers (first case failed)'); return; }
    await ensureNet('other', '10.40.2.0/24');
    await ensureContainer(h1, 'stranger', 'other');
    const peer = await ensureContainer(h2, 'stranger_peer', 'other');
    // control: the resolver knows stranger (it resolves its own network's remote peer) ...
    const ctl = await eventually(() => directA(h1, 'stranger', 'stranger_peer'), answersWith(peer.ip), 'stranger to resolve stranger_peer');
    t.ok(ctl.ok, `control: stranger resolves stranger_peer -> ${peer.ip} (after ${ctl.ms} ms)`, { result: ctl.value, error: ctl.error });
    const ctl2 = await eventually(() => pingByName(h1, 'stranger', 'stranger_peer'), (r) => r.ok && resolvedIp(r) === peer.ip, 'stranger to ping stranger_peer');
    t.ok(ctl2.ok, 'control: and pings it by name through 127.0.0.11', { output: ctl2.value?.output, error: ctl2.error });
    // ... but not the names of a network it is not on, remote or on its own node
    for (const name of ['nginx_web_2', 'web2', `nginx_web_2.${NET}`, 'nginx_web_1', 'web1', `nginx_web_1.${NET}`]) {
      const r = await directA(h1, 'stranger', name);
      t.ok(r.ok && r.rcode === 'NXDOMAIN' && r.answers.length === 0, `direct query from stranger: ${name} -> ${r.rcode ?? r.error} (the upstream's NXDOMAIN)`, { result: r });
    }
    const p = await pingByName(h1, 'stranger', 'nginx_web_2');
    t.match(p.output, /bad address/, 'busybox ping nginx_web_2 in stranger: bad address', { output: p.output });
    const ns = await nslookup(h1, 'stranger', 'nginx_web_2');
    t.ok(ns.code !== 0 && !ns.stdout.includes(web2.ip), 'busybox nslookup nginx_web_2 in stranger fails', { output: out(ns) });
    const ptr = await directA(h1, 'stranger', web2.ip, { type: 'PTR' });
    t.notOk(ptr.answers.some((a) => a.type === 'PTR'), `no PTR for ${web2.ip} from stranger (${ptr.rcode})`, { result: ptr });
    // and the other way round: the ovr containers do not see stranger_peer
    const back = await directA(h1, 'nginx_web_1', 'stranger_peer');
    t.equal(back.rcode, 'NXDOMAIN', `nginx_web_1 does not resolve stranger_peer (${back.rcode})`, { result: back });
  });

  t.test('an outside name is forwarded to the lab upstream', { timeout: 60_000 }, async (t) => {
    const before = (await lab.dnsServer!.queries()).length;
    const ns = await nslookup(h1, 'nginx_web_1', OUTSIDE_NAME);
    t.ok(ns.code === 0 && ns.stdout.includes(OUTSIDE_IP), `busybox nslookup ${OUTSIDE_NAME} in nginx_web_1 -> ${OUTSIDE_IP}`, { output: out(ns) });
    for (const [h, c] of [[h1, 'nginx_web_1'], [h2, 'nginx_web_2']] as const) {
      for (const tcp of [false, true]) {
        const r = await directA(h, c, OUTSIDE_NAME, { tcp });
        t.same(addrs(r), [OUTSIDE_IP], `${h.name} ${c}: ${tcp ? 'TCP' : 'UDP'} query to ${R} for ${OUTSIDE_NAME} -> ${OUTSIDE_IP}`, { result: r });
      }
    }
    const nx = await directA(h1, 'nginx_web_1', 'nothing-here.example');
    t.equal(nx.rcode, 'NXDOMAIN', 'an unknown name gets the upstream\'s NXDOMAIN', { result: nx });
    const log = (await lab.dnsServer!.queries()).slice(before).filter((q) => q.name === OUTSIDE_NAME);
    const srcs = new Set(log.map((q) => q.src.split(':')[0]));
    t.ok(srcs.has(h1.ip) && srcs.has(h2.ip), `the lab upstream got ${OUTSIDE_NAME} from both plugins (${[...srcs].join(', ')})`, { log });
  });

  t.test('an --internal network\'s names resolve across hosts', { timeout: 90_000 }, async (t) => {
    await ensureNet('inr', '10.40.3.0/24', '--internal');
    const a = await ensureContainer(h1, 'int_a', 'inr', '--network-alias', 'inta');
    const b = await ensureContainer(h2, 'int_b', 'inr', '--network-alias', 'intb');
    const routes = await h1.nsSh('int_a', 'ip', '-4', 'route', 'show');
    t.match(routes, new RegExp(`^${R.replace(/\./g, '\\.')} dev eth\\d+`, 'm'), `int_a (internal only) has a route to ${R}`, { routes });
    const d = await eventually(() => directA(h1, 'int_a', 'int_b'), answersWith(b.ip), 'int_a to resolve int_b at the resolver');
    t.ok(d.ok, `direct query from int_a (h1): int_b -> ${b.ip} (after ${d.ms} ms)`, { result: d.value, error: d.error });
    const d2 = await eventually(() => directA(h2, 'int_b', 'inta'), answersWith(a.ip), 'int_b to resolve inta');
    t.ok(d2.ok, `direct query from int_b (h2): alias inta -> ${a.ip}`, { result: d2.value, error: d2.error });
    await pingsByName(t, h1, 'int_a', 'int_b', b.ip);
    await pingsByName(t, h2, 'int_b', 'inta', a.ip);
    await pingsByName(t, h2, 'int_b', 'int_a.inr', a.ip);
  });

  t.test('malformed packets get an error or nothing, and the resolver keeps answering', { timeout: 90_000 }, async (t) => {
    if (!web1) { t.fail('no scenario containers (first case failed)'); return; }
    // deterministic "random" bytes
    let seed = 0x2545f491;
    const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed >>> 24;
    }));
    const hdr = (id: number, flags: number, qd: number, an = 0) => {
      const b = Buffer.alloc(12);
      b.writeUInt16BE(id, 0); b.writeUInt16BE(flags, 2); b.writeUInt16BE(qd, 4); b.writeUInt16BE(an, 6);
      return b;
    };
    const question = (name: string, type = 1) => Buffer.concat([
      ...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0]), Buffer.from([0, type, 0, 1]),
    ]);
    const udpCases: Array<[string, Buffer]> = [
      ['empty datagram', Buffer.alloc(0)],
      ['truncated header (5 bytes)', bytes(5)],
      ['truncated header (11 bytes)', bytes(11)],
      ['header says 1 question, none follows', hdr(0x1111, 0x0100, 1)],
      ['label runs past the end', Buffer.concat([hdr(0x1112, 0x0100, 1), Buffer.from([0x3f]), Buffer.from('abc')])],
      ['compression pointer to itself', Buffer.concat([hdr(0x1113, 0x0100, 1), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])])],
      ['reserved label type 0x80', Buffer.concat([hdr(0x1114, 0x0100, 1), Buffer.from([0x80, 0x01, 0, 0, 1, 0, 1])])],
      ['two questions', Buffer.concat([hdr(0x1115, 0x0100, 2), question('web1'), question('web1')])],
      ['question cut after the name', Buffer.concat([hdr(0x1116, 0x0100, 1), question('web1').subarray(0, 6)])],
      ['answer count claims 65535 records', Buffer.concat([hdr(0x1117, 0x0100, 1, 0xffff), question('web1')])],
      ['opcode STATUS', Buffer.concat([hdr(0x1118, 0x1100, 1), question('web1')])],
      ['a response (QR set)', Buffer.concat([hdr(0x1119, 0x8180, 1), question('web1')])],
      ...Array.from({ length: 8 }, (_, i): [string, Buffer] => [`random bytes #${i + 1}`, bytes(12 + ((i * 97) % 500))]),
      ['4000 random bytes', bytes(4000)],
    ];
    const problems: string[] = [];
    const seen: string[] = [];
    const udpResults = await h1.dnsRawMany('nginx_web_1', R, udpCases.map(([, b]) => b), { timeoutMs: 1000 });
    for (const [i, [what, b]] of udpCases.entries()) {
      const r = udpResults[i]!;
      seen.push(`${what}: ${r.reply === null ? `no reply (${r.error})` : r.rcode}`);
      if (r.reply !== null && (r.rcode === null || r.rcode === 'NOERROR' || r.header?.qr !== 1)) {
        problems.push(`UDP ${what} (${b.toString('hex').slice(0, 80)}): answered ${r.reply.slice(0, 120)} rcode ${r.rcode}`);
      }
    }
    const framed = (b: Buffer) => { const p = Buffer.alloc(2); p.writeUInt16BE(b.length); return Buffer.concat([p, b]); };
    const tcpCases: Array<[string, Buffer]> = [
      ['length 0xffff, 10 bytes, close', Buffer.concat([Buffer.from([0xff, 0xff]), bytes(10)])],
      ['length 5 + 5 bytes', framed(bytes(5))],
      ['header says 1 question, none follows', framed(hdr(0x2221, 0x0100, 1))],
      ['compression pointer to itself', framed(Buffer.concat([hdr(0x2222, 0x0100, 1), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]))],
      ['one length byte only', Buffer.from([0x00])],
      ['random bytes', bytes(300)],
    ];
    const tcpResults = await h1.dnsRawMany('nginx_web_1', R, tcpCases.map(([, b]) => b), { timeoutMs: 1000, tcp: true });
    for (const [i, [what]] of tcpCases.entries()) {
      const r = tcpResults[i]!;
      seen.push(`TCP ${what}: ${r.reply === null ? `no reply (${r.error})` : r.rcode}`);
      if (r.reply !== null && (r.rcode === null || r.rcode === 'NOERROR' || r.header?.qr !== 1)) {
        problems.push(`TCP ${what}: answered ${r.reply.slice(0, 120)} rcode ${r.rcode}`);
      }
    }
    t.comment(`malformed: ${seen.join('; ')}`);
    t.same(problems, [], `${udpCases.length} UDP and ${tcpCases.length} TCP malformed packets: an error rcode or nothing`);
    t.ok(h1.plugin?.running, `h1's plugin is still running (pid ${h1.plugin?.pid})`, { exit: h1.plugin?.exit });
    for (const tcp of [false, true]) {
      const r = await directA(h1, 'nginx_web_1', 'web1', { tcp });
      t.same(addrs(r), [web1.ip], `afterwards ${tcp ? 'TCP' : 'UDP'} web1 still resolves to ${web1.ip}`, { result: r });
    }
    const p = await pingByName(h1, 'nginx_web_1', 'web1');
    t.ok(p.ok, 'and through 127.0.0.11', { output: p.output });
  });

  t.test('the resolver is not reachable from outside the node', { timeout: 60_000 }, async (t) => {
    if (!web1) { t.fail('no scenario containers (first case failed)'); return; }
    // the switch namespace is "outside": send to R through h1's underlay address
    const add = await lab.switchExec('ip', 'route', 'replace', `${R}/32`, 'via', h1.ip);
    if (!t.equal(add.code, 0, `switch: route ${R} via h1 (${h1.ip})`, { stderr: add.stderr })) return;
    try {
      const ctl = await lab.switchExec('ping', '-n', '-c', '1', '-W', '2', h1.ip);
      t.equal(ctl.code, 0, `control: the switch reaches h1 at ${h1.ip}`, { output: ctl.stdout + ctl.stderr });
      const lookup = await lab.switchExec('ip', 'route', 'get', R);
      t.match(lookup.stdout, new RegExp(`via ${h1.ip.replace(/\./g, '\\.')}`), `switch: ${R} goes via h1`, { route: lookup.stdout });
      const probes = [OUTSIDE_NAME, 'nginx_web_1', 'web1'].flatMap((name) => [false, true].map((tcp) => ({ name, tcp })));
      const results = await Promise.all(probes.map((p) => lab.switchDnsQuery(R, p.name, { timeoutMs: 1500, tcp: p.tcp })));
      for (const [i, { name, tcp }] of probes.entries()) {
        const r = results[i]!;
        t.notOk(r.ok, `from the switch, ${tcp ? 'TCP' : 'UDP'} ${name} to ${R} via h1: no answer (${r.error ?? r.rcode})`, { result: r });
      }
    } finally {
      await lab.switchExec('ip', 'route', 'del', `${R}/32`);
    }
    // still fine from inside
    const r = await directA(h1, 'nginx_web_1', 'web1');
    t.same(addrs(r), [web1.ip], 'from a container the resolver still answers', { result: r });
  });

  t.test(`convergence: docker run on h1 until a container on h2 resolves the name (${CONVERGENCE_RUNS} runs)`, { timeout: 150_000 }, async (t) => {
    await ensureNet(NET, '10.40.1.0/24');
    const probeEp = await ensureContainer(h2, 'conv_probe', NET);
    // the probe must be a known querier before we measure (it resolves an existing name)
    const ready = await eventually(() => directA(h2, 'conv_probe', 'conv_probe'), answersWith(probeEp.ip), 'conv_probe to resolve itself');
    if (!t.ok(ready.ok, `conv_probe resolves its own name (after ${ready.ms} ms)`, { result: ready.value, error: ready.error })) return;
    const fromReturn: number[] = [];
    const fromStart: number[] = [];
    const runMs: number[] = [];
    const names: string[] = [];
    for (let i = 0; i < CONVERGENCE_RUNS; i++) {
      const name = `conv_${i}`;
      names.push(name);
      const poller = await h2.dnsPoll('conv_probe', R, name, { intervalMs: 3, deadlineMs: waitMs() });
      await poller.waitReady();
      const t0 = Date.now();
      await h1.runSleeper(name, '--net', NET);
      const t1 = Date.now();
      const res = await poller.result;
      if (!res.ok || res.at === undefined) {
        t.fail(`run ${i}: h2 never resolved ${name} (${res.error}; ${res.sent} queries, ${res.replies} replies)`, { last: res.last });
        break;
      }
      const ep = await endpointOf(h1, name, NET);
      const got = res.last?.answers.filter((a) => a.type === 'A').map((a) => a.data) ?? [];
      if (!got.includes(ep.ip)) t.fail(`run ${i}: ${name} resolved to ${got.join(',')} but has ${ep.ip}`);
      fromReturn.push(res.at - t1);
      fromStart.push(res.at - t0);
      runMs.push(t1 - t0);
    }
    await h1.docker('rm', '-f', ...names).catch(() => undefined);
    if (fromReturn.length < CONVERGENCE_RUNS) return;
    const fmt = (xs: number[]) => `p50 ${percentile(xs, 0.5)} ms, p99 ${percentile(xs, 0.99)} ms, min ${Math.min(...xs)} ms, max ${Math.max(...xs)} ms`;
    t.comment(`convergence after docker run -d returned (${fromReturn.length} runs): ${fmt(fromReturn)} [${fromReturn.join(' ')}]`);
    t.comment(`from docker run -d start: ${fmt(fromStart)}; docker run -d itself: ${fmt(runMs)}`);
    t.ok(percentile(fromReturn, 0.99) <= 10_000, `p99 ${percentile(fromReturn, 0.99)} ms within a generous 10 s`);
  });

  t.test('a removed container stops resolving', { timeout: 90_000 }, async (t) => {
    if (!web2 || !web1) { t.fail('no scenario containers (first case failed)'); return; }
    const ip2 = web2.ip;
    const before = await directA(h1, 'nginx_web_1', 'nginx_web_2');
    t.same(addrs(before), [ip2], `before: nginx_web_2 -> ${ip2}`, { result: before });
    const poller = await h1.dnsPoll('nginx_web_1', R, 'nginx_web_2', { intervalMs: 10, deadlineMs: waitMs(), until: 'gone' });
    await poller.waitReady();
    const t0 = Date.now();
    await h2.docker('rm', '-f', 'nginx_web_2');
    const t1 = Date.now();
    const res = await poller.result;
    t.ok(res.ok, `the resolver on h1 stops answering nginx_web_2 ${res.at ? `${res.at - t1} ms after docker rm -f returned (rm took ${t1 - t0} ms)` : ''}`, { result: res });
    t.equal(res.last?.rcode, 'NXDOMAIN', 'and forwards it: the upstream says NXDOMAIN', { last: res.last });
    const p = await eventually(() => pingByName(h1, 'nginx_web_1', 'nginx_web_2'), (r) => /bad address/.test(r.output), 'ping nginx_web_2 to fail to resolve');
    t.ok(p.ok, 'busybox ping nginx_web_2 in nginx_web_1: bad address', { output: p.value?.output, error: p.error });
    for (const name of ['web2', `nginx_web_2.${NET}`]) {
      const r = await directA(h1, 'nginx_web_1', name);
      t.equal(r.rcode, 'NXDOMAIN', `${name} is gone too (${r.rcode})`, { result: r });
    }
    const ptr = await directA(h1, 'nginx_web_1', ip2, { type: 'PTR' });
    t.notOk(ptr.answers.some((a) => a.type === 'PTR' && a.data === 'nginx_web_2'), `no PTR ${ip2} -> nginx_web_2 any more (${ptr.rcode})`, { result: ptr });
    // the survivor still resolves from h2's side
    // the survivor on h2 keeps resolving (see the bridge MAC case for why this can fail)
    if (await exists(h2, 'conv_probe')) {
      const probe = await eventually(() => directA(h2, 'conv_probe', 'nginx_web_1', { timeoutMs: 500 }), answersWith(web1.ip), 'conv_probe on h2 to resolve nginx_web_1', 3000);
      t.ok(probe.ok, `conv_probe on h2 still resolves nginx_web_1 -> ${web1.ip}`, { result: probe.value, error: probe.error });
    }
  });

  t.test('a container leaving a node does not cut the others there off the resolver (bridge MAC)', { timeout: 150_000 }, async (t) => {
    // The node answers ARP for the resolver address with its bridge's MAC. A
    // Linux bridge without a MAC of its own takes the lowest MAC of its
    // ports, so when the container whose host-side port lent it that MAC
    // leaves, the bridge's MAC changes while the other containers on that
    // node keep the old one in their neighbour cache, and their queries go
    // nowhere until it expires. Set that up on h2 -- on a fresh network, a
    // few containers, one of whose ports (most likely) holds the bridge MAC
    // -- remove that one and see how long another goes without answers. A
    // bridge whose MAC was set explicitly (addr_assign_type 3) keeps it
    // whatever ports come and go; then any container is the victim.
    const linkMac = async (h: LabHost, dev: string) => /link\/ether ([0-9a-f:]{17})/.exec((await h.hostExec('ip', '-o', 'link', 'show', dev)).stdout)?.[1];
    /** The host-side end of a container's interface with `ip`. */
    const hostPort = async (h: LabHost, c: string, ip: string) => {
      const ifc = await ifaceWithIp(h, c, ip);
      const idx = /@if(\d+):/.exec(await h.nsSh(c, 'ip', '-o', 'link', 'show', ifc))?.[1];
      const line = (await h.hostExec('ip', '-o', 'link', 'show')).stdout.split('\n').find((l) => l.startsWith(`${idx}: `)) ?? '';
      return { dev: /^\d+: ([^@:]+)/.exec(line)?.[1], mac: /link\/ether ([0-9a-f:]{17})/.exec(line)?.[1], ifc };
    };
    const assignType = async (h: LabHost, dev: string) =>
      (await run('ip', ['netns', 'exec', h.ns, 'cat', `/sys/class/net/${dev}/addr_assign_type`])).stdout.trim();
    let found: { victim: string; survivor: string; survivorIp: string; survivorIfc: string; bridge: string; mac: string; port: string } | undefined;
    for (let round = 0; round < 3 && !found; round++) {
      const net = `macnet${round}`;
      // bridge mode: a macvlan-mode network's host device has no ports to lend a MAC
      const n = await ensureNet(net, `10.40.${10 + round}.0/24`, '-o', 'tsoverlay.mode=bridge');
      const names = Array.from({ length: 4 }, (_, i) => `mac${round}_${i}`);
      await Promise.all(names.map((c) => ensureContainer(h2, c, net)));
      const mac = await linkMac(h2, n.bridge);
      const ports = await Promise.all(names.map(async (c) => ({ c, ip: (await endpointOf(h2, c, net)).ip, ...(await hostPort(h2, c, (await endpointOf(h2, c, net)).ip)) })));
      const type = await assignType(h2, n.bridge);
      t.comment(`round ${round}: ${n.bridge} on h2 has MAC ${mac} (addr_assign_type ${type}); ports ${ports.map((p) => `${p.dev}=${p.mac}`).join(' ')}`);
      const v = ports.find((p) => p.mac === mac) ?? (type === '3' ? ports[ports.length - 1] : undefined);
      const s = ports.find((p) => p !== v);
      if (v && s && mac) found = { victim: v.c, survivor: s.c, survivorIp: s.ip, survivorIfc: s.ifc, bridge: n.bridge, mac, port: v.dev ?? '?' };
    }
    if (!found) {
      t.comment('no container port held the bridge MAC in 3 rounds (the bridge keeps a MAC of its own, or the VXLAN port has the lowest): nothing to break');
      return;
    }
    const f = found;
    t.comment(`victim ${f.victim} (host port ${f.port}), ${f.bridge} on h2 has MAC ${f.mac}; survivor ${f.survivor}`);
    // the survivor learns the resolver's MAC afresh
    await h2.nsExec(f.survivor, 'ip', 'neigh', 'flush', 'dev', f.survivorIfc);
    const before = await directA(h2, f.survivor, OUTSIDE_NAME);
    t.same(addrs(before), [OUTSIDE_IP], `before: the survivor gets answers`, { result: before });
    const neigh = (await h2.nsExec(f.survivor, 'ip', 'neigh', 'show', R)).stdout.trim();
    t.comment(`survivor's neighbour entry: ${neigh}`);
    await h2.docker('rm', '-f', f.victim);
    const back = await eventually(() => directA(h2, f.survivor, OUTSIDE_NAME, { timeoutMs: 300 }), (r) => r.ok,
      'the survivor to get answers after the victim left', 60_000);
    const after = await linkMac(h2, f.bridge);
    const neighAfter = (await h2.nsExec(f.survivor, 'ip', 'neigh', 'show', R)).stdout.trim();
    t.comment(`${f.bridge} MAC ${f.mac} -> ${after} after ${f.victim} left; survivor's entry now: ${neighAfter}; answers again after ${back.ms} ms`);
    t.ok(back.ok && back.ms <= 3000, `${f.survivor} gets answers again within 3 s after docker rm -f ${f.victim} returned (took ${back.ms} ms${back.ok ? '' : ', never'})`,
      { result: back.value, error: back.error, bridgeMacBefore: f.mac, bridgeMacAfter: after, neighBefore: neigh, neighAfter });
  });

  t.test('the plugins are still alive', async (t) => {
    for (const h of [h1, h2]) t.ok(h.plugin?.running, `${h.name}: plugin running`, { exit: h.plugin?.exit });
  });
}
