// A TLS-only ZooKeeper end to end (docs/security.md): two Docker hosts and
// one ZooKeeper server whose only port on the underlay is its TLS port
// (secureClientPort, client certificates required; the plain port listens
// on the server's loopback only). The plugins run with --zk-tls-ca,
// --zk-tls-cert, --zk-tls-key and --zk-auth-file: a network created once on
// h1 appears on h2, containers ping each other across the hosts and find
// each other by name through the node resolver.
// Needs root, TSOVERLAY_IT=1 and a built plugin (npm run build).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { createOverlay, endpointOf, pingUntilOk, run, waitFor, waitNetwork } from '../lab/index.js';
import { SKIP_REASON, integrationEnabled, labForFile } from '../lab/suite.js';

/** The plugin's default resolver address. */
const R = '169.254.53.53';

if (!integrationEnabled()) {
  t.plan(0, SKIP_REASON);
} else {
  await main();
}

async function main(): Promise<void> {
  const lab = await labForFile(t, {
    hosts: [{ name: 'h1' }, { name: 'h2' }],
    zookeeper: { servers: 1, tickTimeMs: 500, tls: true },
    plugin: { store: 'zk', zkSessionTimeoutMs: 6000 },
  }, {
    logLines: 120,
    beforeDestroy: async (lab) => {
      await lab.switchExec('ip', 'route', 'del', `${R}/32`).catch(() => undefined);
    },
  });
  if (!lab?.zk?.tlsMaterial) {
    if (lab) t.fail('the lab made no TLS material');
    return;
  }
  const m = lab.zk.tlsMaterial;
  const [h1, h2] = [lab.host('h1'), lab.host('h2')];
  const authFile = join(lab.dir, 'zk-auth');
  await writeFile(authFile, `tsoverlay:tls-${lab.id}\n`, { mode: 0o600 });
  const args = ['--zk-tls-ca', m.ca, '--zk-tls-cert', m.clientCert, '--zk-tls-key', m.clientKey, '--zk-auth-file', authFile];
  const zkIp = lab.zk.servers[0]?.ip ?? '';

  t.test('only the TLS port is reachable from the hosts', async (t) => {
    const probe = (port: number) =>
      run('nsenter', [`--net=/run/netns/${h1.ns}`, '--', process.execPath, '-e',
        `const s=require('node:net').connect(${port},'${zkIp}');s.on('connect',()=>{console.log('open');process.exit(0)});s.on('error',(e)=>{console.log(e.code);process.exit(0)});setTimeout(()=>{console.log('timeout');process.exit(0)},3000)`]);
    t.equal((await waitFor(async () => (await probe(lab.zk!.securePort)).stdout.trim(), { what: 'the TLS port', until: (o) => o === 'open', timeoutMs: 30_000 })), 'open', `${zkIp}:${lab.zk!.securePort} (TLS) accepts connections`);
    t.equal((await probe(lab.zk!.clientPort)).stdout.trim(), 'ECONNREFUSED', `${zkIp}:${lab.zk!.clientPort} (plain) is closed to the underlay`);
  });

  t.test('plugins over TLS: create once, cross-host ping, names', { timeout: 180_000 }, async (t) => {
    await Promise.all([h1.startPlugin({ args, timeoutMs: 60_000 }), h2.startPlugin({ args, timeoutMs: 60_000 })]);
    t.comment(`lab ${lab.id}: store ${lab.zkStore}, dockerd ${h1.engineVersion}`);
    await createOverlay(h1, 'nt', '10.43.0.0/24');
    await waitNetwork(h2, 'nt', 30_000);
    t.pass('the network created on h1 appears on h2');
    await h1.runSleeper('ta', '--net', 'nt');
    await h2.runSleeper('tb', '--net', 'nt');
    const a = await endpointOf(h1, 'ta', 'nt');
    const b = await endpointOf(h2, 'tb', 'nt');
    const ab = await pingUntilOk(h1, 'ta', b.ip);
    t.ok(ab.ok, `ta (h1) -> tb (h2) ${b.ip}`);
    const ba = await pingUntilOk(h2, 'tb', a.ip);
    t.ok(ba.ok, `tb (h2) -> ta (h1) ${a.ip}`);
    const byName = await waitFor(() => h1.dnsQuery('ta', R, 'tb'), {
      what: 'tb to resolve from ta',
      until: (r) => r.answers.some((x) => x.data === b.ip),
      timeoutMs: 20_000,
    }).catch((e: unknown) => e as Error);
    t.notOk(byName instanceof Error, `ta resolves tb (on h2) to ${b.ip}`, { got: String(byName) });
    t.match(await h1.logs(400), /ZooKeeper session established/, 'h1 logged its session over TLS');
  });
}
