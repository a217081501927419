// ZooKeeper digest auth end to end (docs/security.md): two Docker hosts and
// one ZooKeeper server. The cluster starts as before (open ACLs) with a
// network and a container on each host; then, while a 50 pps ping runs
// between them, it is upgraded as documented: each plugin restarted with
// --zk-auth-file (the session resumed), then `tsoverlay store secure` run
// once. The ping loses nothing and no plugin gets a new session. After it, a
// raw ZooKeeper client without credentials is refused on read and on write
// under the chroot, and a network created afterwards works across the hosts
// (its records carry the ACL too).
// Needs root, TSOVERLAY_IT=1 and a built plugin (npm run build).
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { createOverlay, endpointOf, pingUntilOk, run, waitNetwork, type LabHost } from '../lab/index.js';
import { SKIP_REASON, integrationEnabled, labForFile } from '../lab/suite.js';

const SESSION_MS = 4000;
const CLI = process.env['TSOVERLAY_CLI'] ?? fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

if (!integrationEnabled()) {
  t.plan(0, SKIP_REASON);
} else {
  await main();
}

async function main(): Promise<void> {
  const lab = await labForFile(t, {
    hosts: [{ name: 'h1' }, { name: 'h2' }],
    zookeeper: { servers: 1, tickTimeMs: 500 },
    plugin: { store: 'zk', zkSessionTimeoutMs: SESSION_MS },
  }, { logLines: 120 });
  if (!lab) return;
  const [h1, h2] = [lab.host('h1'), lab.host('h2')];
  const chroot = lab.zkChroot;
  const store = lab.zkStore ?? '';
  const authFile = join(lab.dir, 'zk-auth');
  const password = `lab-${lab.id}-secret`;
  await writeFile(authFile, `tsoverlay:${password}\n`, { mode: 0o600 });
  await chmod(authFile, 0o600);
  const withAuth = ['--zk-auth-file', authFile];

  try {
    await Promise.all([h1.startPlugin(), h2.startPlugin()]);
  } catch (e) {
    t.fail(`plugin did not start: ${e instanceof Error ? e.message : String(e)}`);
    return;
  }
  t.comment(`lab ${lab.id}: store ${store}, dockerd ${h1.engineVersion}`);

  /** A raw client's attempt (zk-raw.mjs, no credentials): exit code and error text. */
  const raw = async (op: 'get' | 'children' | 'create' | 'rmr', path: string, data?: string) => {
    const r = await lab.zkRaw(op, path, data);
    return { code: r.code, err: r.stderr.trim() };
  };

  const secure = (h: LabHost) =>
    run('nsenter', [`--net=/run/netns/${h.ns}`, '--', process.execPath, CLI, 'store', 'secure', '--store', store, ...withAuth, '--log-level', 'warn'], {
      timeoutMs: 60_000,
    });

  await createOverlay(h1, 'n1', '10.41.0.0/24');
  await waitNetwork(h2, 'n1');
  await h1.runSleeper('ca', '--net', 'n1');
  await h2.runSleeper('cb', '--net', 'n1');
  const b = await endpointOf(h2, 'cb', 'n1');

  t.test('before: the tree is open (what the upgrade fixes)', async (t) => {
    const r = await raw('children', `${chroot}`);
    t.equal(r.code, 0, 'a raw client without credentials lists the chroot', { err: r.err });
  });

  t.test('upgrade while a ping runs: restart with --zk-auth-file, then store secure; nothing lost', { timeout: 180_000 }, async (t) => {
    const pre = await pingUntilOk(h1, 'ca', b.ip);
    if (!t.ok(pre.ok, 'ca (h1) -> cb (h2) works before the upgrade')) return;
    const sessions = await Promise.all([h1.zkSessionId(), h2.zkSessionId()]);
    const stream = await h1.pingStream('ca', b.ip, { interval: 0.02 });
    try {
      await stream.waitReplies(25, 10_000);
      for (const h of [h1, h2]) {
        await h.restartPlugin({ args: withAuth });
        await stream.waitReplies(stream.replies + 50, 10_000);
        t.pass(`${h.name} restarted with --zk-auth-file; ping goes on`);
      }
      const t0 = Date.now();
      const out = await secure(h1);
      t.equal(out.code, 0, `store secure exit 0 (${Date.now() - t0} ms)`, { stderr: out.stderr });
      t.match(out.stdout, new RegExp(`^secured ${chroot}: \\d+ znodes, \\d+ ACLs set`), out.stdout.trim());
      t.notMatch(`${out.stdout}${out.stderr}`, password, 'the password is not printed');
      await stream.waitReplies(stream.replies + 100, 10_000);
      const r = await stream.stop();
      t.comment(`ping ca -> cb across the upgrade: ${r.transmitted} sent, ${r.received} received`);
      t.ok(r.transmitted > 200, 'the ping ran across both restarts and the walk');
      t.equal(r.received, r.transmitted, '0 packets lost', { output: r.output.slice(-400) });
    } finally {
      if (stream.proc.running) await stream.stop();
    }
    t.same(await Promise.all([h1.zkSessionId(), h2.zkSessionId()]), sessions, 'both plugins kept their ZooKeeper sessions');
    const again = await secure(h2);
    t.match(again.stdout, / 0 ACLs set/, 'a second run changes nothing', { out: again.stdout });
  });

  t.test('after: a raw client without credentials is refused on read and on write', async (t) => {
    for (const [op, path, data] of [
      ['get', chroot],
      ['children', chroot],
      ['children', `${chroot}/networks`],
      ['create', `${chroot}/planted`, '{}'],
      ['rmr', `${chroot}/networks`],
    ] as const) {
      const r = await raw(op, path, data);
      t.not(r.code, 0, `${op} ${path} refused`);
      t.match(r.err, /NO_AUTH/, 'by ZooKeeper (NO_AUTH)', { err: r.err });
    }
    const pre = await pingUntilOk(h1, 'ca', b.ip);
    t.ok(pre.ok, 'the overlay still works (nothing was deleted)');
  });

  t.test('after: a new network spreads and works across the hosts; its records are refused to others too', { timeout: 120_000 }, async (t) => {
    await createOverlay(h2, 'n2', '10.42.0.0/24');
    await waitNetwork(h1, 'n2');
    await h1.runSleeper('cc', '--net', 'n2');
    await h2.runSleeper('cd', '--net', 'n2');
    const d = await endpointOf(h2, 'cd', 'n2');
    const p = await pingUntilOk(h1, 'cc', d.ip);
    t.ok(p.ok, `cc (h1) -> cd (h2) on n2 (${p.tries} tries)`);
    const r = await raw('children', `${chroot}/networks`);
    t.match(r.err, /NO_AUTH/, 'its records cannot be listed without credentials');
  });
}
