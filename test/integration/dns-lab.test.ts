// Self-test of the lab's DNS pieces (test/lab/dns.ts) with Docker's own bridge
// driver -- no tsoverlay involved -- so that a broken harness is told apart
// from a broken resolver in dns.test.ts: the lab DNS server answers from the
// switch namespace over UDP and TCP, a container's queries reach it through
// Docker's embedded DNS and the dockerd --dns option, per-host --dns servers
// land in containers, the poller and raw sender work, and destroy() stops it.
// Needs root and TSOVERLAY_IT=1.
import t from 'tap';
import { BUSYBOX_IMAGE, dnsQuery, Lab, LabDnsServer, nsNamed, SLEEPER } from '../lab/index.js';

if (process.env['TSOVERLAY_IT'] !== '1' || process.getuid?.() !== 0) {
  t.plan(0, 'integration tests need root and TSOVERLAY_IT=1');
} else {
  await main();
}

async function main(): Promise<void> {
  let lab: Lab;
  try {
    lab = await Lab.create({
      // h1: the default --dns (the lab's outside address, where the lab DNS server listens); h2: its own
      hosts: [{ name: 'h1' }, { name: 'h2', dockerDns: ['169.254.53.53', '192.0.2.53'] }],
      dnsServer: { records: { 'outside.example': '203.0.113.7', 'two.example': '203.0.113.8' } },
    });
  } catch (e) {
    t.fail(`lab could not be built: ${e instanceof Error ? e.message : String(e)}`);
    return;
  }
  let destroyed = false;
  t.teardown(async () => {
    if (!destroyed) await lab.destroy(t.passing() ? {} : { keepLogsIn: process.env['TSL_LOG_DIR'] ?? 'test-results/lab-logs' });
  });
  const [h1, h2] = [lab.host('h1'), lab.host('h2')];
  const server = lab.dnsServer!;

  t.test('the lab DNS server answers on the outside address, UDP and TCP', { timeout: 60_000 }, async (t) => {
    t.equal(server.address, lab.outsideIp, 'its address is the outside address (port 53)');
    t.same(LabDnsServer.DEFAULT_RECORDS, { 'outside.example': '203.0.113.7' }, 'default records');
    for (const tcp of [false, true]) {
      const r = await dnsQuery(nsNamed(h1.ns), server.address, 'two.example', { tcp });
      t.same(r.answers.map((a) => a.data), ['203.0.113.8'], `${tcp ? 'TCP' : 'UDP'} from h1's namespace: two.example A`, { result: r });
      const nx = await dnsQuery(nsNamed(h1.ns), server.address, 'nothing.example', { tcp });
      t.equal(nx.rcode, 'NXDOMAIN', `${tcp ? 'TCP' : 'UDP'}: other names NXDOMAIN`, { result: nx });
    }
    const noData = await dnsQuery(nsNamed(h1.ns), server.address, 'outside.example', { type: 'AAAA' });
    t.ok(noData.rcode === 'NOERROR' && noData.answers.length === 0, 'AAAA of a known name: NOERROR, no data', { result: noData });
    const ptr = await dnsQuery(nsNamed(h1.ns), server.address, '10.1.2.3', { type: 'PTR' });
    t.equal(ptr.name, '3.2.1.10.in-addr.arpa', 'PTR of an IPv4 address asks for its in-addr.arpa name');
    const none = await lab.switchDnsQuery(`${lab.net}.250`, 'outside.example', { timeoutMs: 300 });
    t.notOk(none.ok, `no server there: no answer (${none.error})`);
    const log = await server.queries();
    t.ok(log.some((q) => q.name === 'two.example' && q.proto === 'tcp' && q.src.startsWith(`${h1.ip}:`)), 'queries are logged with source and protocol', { log });
  });

  t.test('containers reach it through Docker\'s embedded DNS and dockerd --dns', { timeout: 90_000 }, async (t) => {
    await h1.docker('network', 'create', '--subnet', '10.99.0.0/24', 'b1');
    await h1.runSleeper('c1', '--net', 'b1');
    const r = await h1.dockerTry('exec', 'c1', 'nslookup', 'outside.example');
    t.ok(r.code === 0 && r.stdout.includes('203.0.113.7'), 'nslookup outside.example in a container: 203.0.113.7', { output: r.stdout + r.stderr });
    const log = await server.queries();
    t.ok(log.some((q) => q.name === 'outside.example' && q.src.startsWith(`${h1.ip}:`)), 'it came from h1 (through the NAT of its bridge)', { log });
    // h2's own --dns list lands in a container on the default bridge as is
    await h2.docker('run', '-d', '--name', 'c2', BUSYBOX_IMAGE, ...SLEEPER);
    const resolv = await h2.docker('exec', 'c2', 'cat', '/etc/resolv.conf');
    t.match(resolv, /nameserver 169\.254\.53\.53\s+nameserver 192\.0\.2\.53/, 'h2: dockerd --dns 169.254.53.53 --dns 192.0.2.53', { resolv });
    const resolv1 = await h1.docker('run', '--rm', BUSYBOX_IMAGE, 'cat', '/etc/resolv.conf');
    t.match(resolv1, new RegExp(`nameserver ${lab.outsideIp.replace(/\./g, '\\.')}\\b`), 'h1: the default --dns is the outside address', { resolv1 });
  });

  t.test('poller and raw sender', { timeout: 60_000 }, async (t) => {
    const p = await h1.dnsPoll('c1', server.address, 'outside.example', { intervalMs: 5, deadlineMs: 5000 });
    await p.waitReady();
    const res = await p.result;
    t.ok(res.ok && res.at !== undefined, `poll until answered: ok after ${res.sent} queries`, { res });
    const gone = await h1.dnsPoll('c1', server.address, 'nothing.example', { intervalMs: 5, deadlineMs: 5000, until: 'gone' });
    t.ok((await gone.result).ok, 'poll until gone: ok for an NXDOMAIN name');
    const never = await h1.dnsPoll('c1', server.address, 'nothing.example', { intervalMs: 5, deadlineMs: 300 });
    const nres = await never.result;
    t.ok(!nres.ok && nres.error === 'deadline' && nres.sent > 10, `poll gives up at its deadline (${nres.sent} queries sent)`, { nres });
    const raw = await h1.dnsRaw('c1', server.address, Buffer.from('0102', 'hex'), { timeoutMs: 300 });
    t.ok(raw.reply === null && raw.error === 'timeout', 'raw: 2 bytes get no reply from the lab server', { raw });
    t.equal(h1.probes.size, 0, 'finished pollers are no longer probes');
  });

  t.test('destroy() stops the DNS server', { timeout: 180_000 }, async (t) => {
    const pid = server.proc.pid;
    await lab.destroy();
    destroyed = true;
    t.notOk(server.running, `dns server (pid ${pid}) stopped`);
    t.throws(() => process.kill(pid, 0), 'and gone');
  });
}
