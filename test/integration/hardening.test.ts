// Hardening (issue 15 items 4-6) on real dockerd hosts with ZooKeeper: the
// VXLAN port takes frames from members only (a frame forged from the lab's
// switch, an underlay address of no member, is not delivered; the same frame
// from a member is), a node that joins later is let in without a lost ping
// between the others, one container flooding the resolver does not stop
// another's lookups, a DNS query with a source of another network gets no
// answer (the resolver's source filter; with the filter bypassed, the same
// forged queries are answered: the control), and the plugin socket is mode
// 0600.
// Needs root and TSOVERLAY_IT=1.
import { readFile, stat } from 'node:fs/promises';
import t from 'tap';
import { type LabHost } from '../lab/index.js';
import { createOverlay, endpointOf, waitNetwork } from '../lab/overlay.js';
import { SKIP_REASON, integrationEnabled, labForFile } from '../lab/suite.js';
import { waitFor } from '../lab/wait.js';

/**
 * Send one VXLAN frame (VNI, to a container's MAC) carrying an ICMP echo
 * request to its IP, over UDP to `dst`:4789 from wherever it runs.
 */
const FORGE = `
import socket, struct, sys
dst, vni, dmac, dip, sip = sys.argv[1:6]
def csum(b):
    if len(b) % 2: b += b'\\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return (~s) & 0xffff
icmp = struct.pack('!BBHHH', 8, 0, 0, 0x7e57, 1) + b'forged-by-an-outsider'
icmp = icmp[:2] + struct.pack('!H', csum(icmp)) + icmp[4:]
ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(icmp), 1, 0, 64, 1, 0, socket.inet_aton(sip), socket.inet_aton(dip))
ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
eth = bytes.fromhex(dmac.replace(':', '')) + bytes.fromhex('02aabbccdd01') + b'\\x08\\x00'
vx = struct.pack('!II', 0x08000000, int(vni) << 8)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(5): s.sendto(vx + eth + ip + icmp, (dst, 4789))
`;

/** For `secs` seconds, as fast as `per_s` allows, DNS queries for NAME to the resolver. */
const FLOOD = `
import socket, struct, sys, time
server, name, secs, per_s = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
q = lambda i: struct.pack('!HHHHHH', i & 0xffff, 0x0100, 1, 0, 0, 0) + b''.join(bytes([len(p)]) + p.encode() for p in name.split('.')) + b'\\0\\0\\1\\0\\1'
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.setblocking(False)
end = time.time() + secs; i = 0
while time.time() < end:
    s.sendto(q(i), (server, 53)); i += 1
    time.sleep(1.0 / per_s)
print(i)
`;

/**
 * N DNS queries for NAME to the resolver with a forged IPv4 source and UDP
 * source port (a raw socket: the kernel takes the header as given).
 */
const SPOOF = `
import socket, struct, sys
server, src, sport, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for i in range(n):
    dns = struct.pack('!HHHHHH', 0x5000 + i, 0x0100, 1, 0, 0, 0) + b''.join(bytes([len(p)]) + p.encode() for p in name.split('.')) + b'\\0\\0\\1\\0\\1'
    udp = struct.pack('!HHHH', sport, 53, 8 + len(dns), 0) + dns
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(server))
    s.sendto(ip + udp, (server, 0))
print(n)
`;

/** Count the DNS answers from SERVER:53 that reach UDP PORT here, for up to SECS seconds or until N have come. */
const CATCH = `
import socket, sys, time
server, port, secs, n = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', port))
end = time.time() + secs; got = 0
while got < n and time.time() < end:
    s.settimeout(max(0.01, end - time.time()))
    try:
        data, peer = s.recvfrom(2048)
    except socket.timeout:
        break
    if peer == (server, 53): got += 1
print(got)
`;

const icmpInEchos = async (h: LabHost, container: string): Promise<number> => {
  const snmp = await h.nsSh(container, 'cat', '/proc/net/snmp');
  const [names, values] = snmp.split('\n').filter((l) => l.startsWith('Icmp:'));
  const i = names!.split(/\s+/).indexOf('InEchos');
  return Number(values!.split(/\s+/)[i]);
};

const dropCount = async (h: LabHost, table = 'raw', chain = 'TSOVERLAY-VXLAN', match = /\bDROP\b/): Promise<number> => {
  const out = (await h.hostExec('iptables', '-w', '5', '-t', table, '-L', chain, '-v', '-x', '-n')).stdout;
  const line = out.split('\n').find((l) => match.test(l));
  return Number(line?.trim().split(/\s+/)[0] ?? NaN);
};
const dnsDrops = (h: LabHost): Promise<number> => dropCount(h, 'filter', 'TSOVERLAY-DNS', /\bDROP\b.*\budp dpt:53\b/);

if (!integrationEnabled()) {
  t.plan(0, SKIP_REASON);
} else {
  await main();
}

async function main(): Promise<void> {
  const lab = await labForFile(
    t,
    {
      hosts: [{ name: 'h1' }, { name: 'h2' }, { name: 'h3' }],
      zookeeper: { servers: 1, tickTimeMs: 500 },
      dnsServer: { records: { 'outside.example': '203.0.113.7' } },
      plugin: { store: 'zk', dnsUpstream: 'lab' },
    },
    { logLines: 80 },
  );
  if (!lab) return;
  const [h1, h2, h3] = [lab.host('h1'), lab.host('h2'), lab.host('h3')];
  await Promise.all([h1.startPlugin(), h2.startPlugin()]);
  const net = await createOverlay(h1, 'hard', '10.61.0.0/24');
  await waitNetwork(h2, 'hard');
  await h1.runSleeper('c1', '--net', 'hard');
  await h2.runSleeper('c2', '--net', 'hard');
  await h1.runSleeper('c1b', '--net', 'hard');
  const e1 = await endpointOf(h1, 'c1', 'hard');
  const e2 = await endpointOf(h2, 'c2', 'hard');

  t.test('the plugin socket is mode 0600', async (t) => {
    for (const h of [h1, h2]) {
      const st = await stat(h.pluginSocket);
      t.equal((st.mode & 0o777).toString(8), '600', `${h.name}: srw------- whatever the umask`);
    }
  });

  t.test('VXLAN from a non-member underlay address is dropped; from a member it is delivered', { timeout: 120_000 }, async (t) => {
    const ok = await h2.ping('c2', e1.ip, { count: 3 });
    t.ok(ok.ok, `members reach each other (${ok.received}/${ok.transmitted})`);
    const chain = (await h1.hostExec('iptables', '-t', 'raw', '-S', 'TSOVERLAY-VXLAN')).stdout;
    t.match(chain, new RegExp(`-s ${h2.ip}/32 -j RETURN`), 'h1 lets h2 in');
    t.notMatch(chain, new RegExp(`-s ${lab.outsideIp}/32`), 'and not the switch');
    const args = [h1.ip, String(net.vni), e1.mac, e1.ip, '10.61.0.250'];
    const echos0 = await icmpInEchos(h1, 'c1');
    const drops0 = await dropCount(h1);
    const forged = await lab.switchExec('python3', '-c', FORGE, ...args);
    t.equal(forged.code, 0, `5 frames sent from the switch (${lab.outsideIp}), no member ${forged.stderr}`);
    await waitFor(() => dropCount(h1), { what: 'the DROP counter on h1', until: (n) => n >= drops0 + 5, timeoutMs: 5000 });
    const drops1 = await dropCount(h1);
    t.ok(drops1 >= drops0 + 5, `h1's TSOVERLAY-VXLAN dropped them (${drops0} -> ${drops1})`);
    t.equal(await icmpInEchos(h1, 'c1'), echos0, 'the container saw none of them (ICMP InEchos unchanged)');
    // the control: the very same frame from a member's address is delivered
    const fromMember = await h2.hostExec('python3', '-c', FORGE, ...args);
    t.equal(fromMember.code, 0, fromMember.stderr);
    const echos = await waitFor(() => icmpInEchos(h1, 'c1'), { what: 'the echo requests in c1', until: (n) => n >= echos0 + 5, timeoutMs: 5000 });
    t.ok(echos >= echos0 + 5, `the same 5 frames from h2's VTEP reach the container (InEchos ${echos0} -> ${echos})`);
  });

  t.test('a node that joins later is let in; the pairs already talking lose nothing', { timeout: 180_000 }, async (t) => {
    const stream = await h2.pingStream('c2', e1.ip, { interval: 0.05 });
    await stream.waitReplies(5);
    await h3.startPlugin();
    await waitNetwork(h3, 'hard', 30_000);
    await h3.runSleeper('c3', '--net', 'hard');
    await waitFor(() => h1.hostExec('iptables', '-t', 'raw', '-S', 'TSOVERLAY-VXLAN').then((r) => r.stdout), {
      what: 'h3 in h1\'s member chain',
      until: (s) => s.includes(`-s ${h3.ip}/32 -j RETURN`),
      timeoutMs: 20_000,
    });
    const started = Date.now();
    const first = await waitFor(() => h3.ping('c3', e1.ip, { count: 1, timeout: 1 }), { what: 'c3 -> c1', until: (r) => r.ok, timeoutMs: 20_000 });
    t.ok(first.ok, `c3 (h3, joined later) reaches c1 on h1 within ${Date.now() - started} ms of its member rule`);
    const steady = await h3.ping('c3', e2.ip, { count: 10, interval: 0.05 });
    t.equal(steady.received, 10, `c3 -> c2 on h2: ${steady.received}/10`);
    const r = await stream.stop();
    t.equal(r.transmitted - r.received, 0, `c2 -> c1 while h3 joined: ${r.received}/${r.transmitted}, 0 lost`);
  });

  t.test('one container flooding the resolver does not stop another\'s lookups', { timeout: 120_000 }, async (t) => {
    const R = '169.254.53.53';
    const flood = h1.nsExec('c1', 'python3', '-c', FLOOD, R, 'outside.example', '6', '2000');
    let answered = 0;
    const sent: string[] = [];
    await new Promise((resolve) => setTimeout(resolve, 500)); // the flood is under way
    for (let i = 0; i < 12; i++) {
      const name = i % 2 ? 'c2' : 'outside.example';
      const r = await h1.dnsQuery('c1b', R, name, { timeoutMs: 1000 });
      sent.push(`${name}:${r.rcode ?? r.error}`);
      if (r.answers.length > 0) answered++;
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    const f = await flood;
    t.equal(f.code, 0, f.stderr);
    t.comment(`c1 sent ${f.stdout.trim()} queries in 6 s`);
    t.equal(answered, 12, `all 12 lookups of c1b answered during c1's flood (${sent.join(' ')})`);
    const limited = (await readFile(h1.pluginLog, 'utf8')).split('\n').filter((l) => l.includes('dns client over its query rate'));
    t.ok(limited.length >= 1 && limited.length <= 2, `the flood was limited, and said so once per 10 s (${limited.length} lines)`);
    t.match(limited[0] ?? '', new RegExp(`"source":"${e1.ip.replace(/\./g, '\\.')}"`), 'naming c1\'s address', { line: limited[0] });
  });

  t.test('a DNS query with a source of another network gets no answer; with the filter bypassed it does', { timeout: 180_000 }, async (t) => {
    const R = '169.254.53.53';
    const N = 10;
    const PORT = 40053;
    const bnet = await createOverlay(h1, 'hardb', '10.62.0.0/24', { args: ['-o', 'tsoverlay.mode=bridge'] });
    await h1.runSleeper('cb', '--net', 'hardb');
    const eb = await endpointOf(h1, 'cb', 'hardb');
    const chain = await waitFor(() => h1.hostExec('iptables', '-w', '5', '-S', 'TSOVERLAY-DNS').then((r) => r.stdout), {
      what: 'both networks in h1\'s resolver source filter',
      until: (out) => out.includes(`-s 10.61.0.0/24 -i ${net.bridge} -j ACCEPT`) && out.includes(`-s 10.62.0.0/24 -i ${bnet.bridge} -j ACCEPT`),
      timeoutMs: 20_000,
    });
    t.pass(`the chain: ${chain.split('\n').filter((l) => l.startsWith('-A')).join(' | ')}`);
    const own = await h1.dnsQuery('cb', R, 'c1', { timeoutMs: 2000 });
    t.ok(own.ok, `cb's own query is answered (${own.rcode ?? own.error})`);
    const ownTcp = await h1.dnsQuery('c1', R, 'c2', { timeoutMs: 2000, tcp: true });
    t.ok(ownTcp.ok && ownTcp.answers.length > 0, `c1's own query over TCP is answered (${ownTcp.rcode ?? ownTcp.error})`);
    // c1 (macvlan network 10.61) forges cb's address (bridge network 10.62), and cb forges c1's
    const pairs = [
      { from: 'c1', victim: 'cb', victimIp: eb.ip, what: 'c1 (macvlan, 10.61) as cb (bridge, 10.62)' },
      { from: 'cb', victim: 'c1', victimIp: e1.ip, what: 'cb (bridge, 10.62) as c1 (macvlan, 10.61)' },
    ];
    const forge = async (p: (typeof pairs)[number]): Promise<{ answered: number; drops: number }> => {
      const catcher = h1.nsExec(p.victim, 'python3', '-c', CATCH, R, String(PORT), '4', String(N));
      const port = `:${PORT.toString(16).toUpperCase()} `;
      await waitFor(() => h1.nsSh(p.victim, 'cat', '/proc/net/udp'), { what: `the catcher in ${p.victim}`, until: (udp) => udp.includes(port), timeoutMs: 10_000 });
      const drops0 = await dnsDrops(h1);
      const sent = await h1.nsExec(p.from, 'python3', '-c', SPOOF, R, p.victimIp, String(PORT), 'c2', String(N));
      t.equal(sent.code, 0, `${p.what}: ${N} queries sent ${sent.stderr}`);
      const caught = await catcher;
      t.equal(caught.code, 0, caught.stderr);
      return { answered: Number(caught.stdout.trim()), drops: (await dnsDrops(h1)) - drops0 };
    };
    for (const p of pairs) {
      const r = await forge(p);
      t.equal(r.answered, 0, `${p.what}: ${r.answered}/${N} answered`);
      t.ok(r.drops >= N, `${p.what}: TSOVERLAY-DNS's UDP DROP counted them (+${r.drops})`);
    }
    // the control: the same forged queries with the filter bypassed (an ACCEPT above the jump, as the old rule was)
    const bypass = ['INPUT', '-d', `${R}/32`, '-i', 'tsbr+', '-m', 'comment', '--comment', 'lab: resolver filter bypassed', '-j', 'ACCEPT'];
    t.equal((await h1.hostExec('iptables', '-w', '5', '-I', ...bypass.slice(0, 1), '1', ...bypass.slice(1))).code, 0);
    try {
      for (const p of pairs) {
        const r = await forge(p);
        t.equal(r.answered, N, `control, ${p.what}: ${r.answered}/${N} answered without the filter (DROP +${r.drops})`);
        t.equal(r.drops, 0, 'and none dropped');
      }
    } finally {
      await h1.hostExec('iptables', '-w', '5', '-D', ...bypass);
    }
  });
}
