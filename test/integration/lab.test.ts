// Self-test of the lab harness (test/lab) with Docker's own bridge driver --
// no tsoverlay involved -- so a broken lab is told apart from a broken plugin.
// Needs root and TSOVERLAY_IT=1.
import t from 'tap';
import { existsSync } from 'node:fs';
import { BUSYBOX_IMAGE, Lab, SLEEPER, waitFor } from '../lab/index.js';
import { SKIP_REASON, integrationEnabled, labForFile } from '../lab/suite.js';

if (!integrationEnabled()) {
  t.plan(0, SKIP_REASON);
} else {
  await main();
}

async function main(): Promise<void> {
  const lab = await labForFile(t, { hosts: [{ name: 'h1' }, { name: 'h2', mtu: 9000 }] });
  if (!lab) return;
  const h1 = lab.host('h1');
  const h2 = lab.host('h2');

  t.test('hosts have their own engine, hostname and underlay', { timeout: 120_000 }, async (t) => {
    for (const h of [h1, h2]) {
      const name = (await h.docker('info', '--format', '{{.Name}}')).trim();
      t.equal(name, h.hostname, `${h.name}: dockerd sees its own hostname`);
      t.ok((await h.links()).includes('ul0'), `${h.name}: has ul0`);
      const mtu = (await h.hostExec('cat', '/sys/class/net/ul0/mtu')).stdout.trim();
      // /sys shows the root namespace here; read the MTU through netlink instead
      const ipOut = (await h.hostExec('ip', '-o', 'link', 'show', 'ul0')).stdout;
      t.match(ipOut, new RegExp(`mtu ${h.mtu} `), `${h.name}: underlay mtu ${h.mtu} (sysfs said ${mtu || 'nothing'})`);
      t.match(await h.docker('images', '--format', '{{.Repository}}:{{.Tag}}'), BUSYBOX_IMAGE, `${h.name}: image imported`);
    }
    t.not(h1.dockerd?.pid, h2.dockerd?.pid);
  });

  t.test('bridge network: containers talk, and have a way out through NAT', { timeout: 120_000 }, async (t) => {
    await h1.docker('network', 'create', '--subnet', '10.99.0.0/24', 'plain');
    await h1.runSleeper('ca', '--net', 'plain');
    await h1.runSleeper('cb', '--net', 'plain');
    const byIp = await h1.ping('ca', '10.99.0.3');
    t.ok(byIp.ok, `a -> b by IP\n${byIp.output}`);
    const byName = await h1.ping('ca', 'cb', { viaDockerExec: true, count: 2 });
    t.ok(byName.ok, `a -> b by name\n${byName.output}`);
    const out = await h1.ping('ca', lab.outsideIp);
    t.ok(out.ok, `a -> outside ${lab.outsideIp}\n${out.output}`);
    // and nothing answers beyond the lab: no route in the host namespace
    const route = (await h1.hostExec('ip', 'route', 'get', '10.255.255.53')).stderr;
    t.match(route, /unreachable/i, 'no route out of the lab');
  });

  t.test('ping stream stops right after a reply: no false loss', { timeout: 120_000 }, async (t) => {
    const s = await h1.pingStream('ca', '10.99.0.3', { interval: 0.02 });
    await s.waitReplies(20);
    const r = await s.stop();
    t.equal(r.received, r.transmitted, `received == transmitted (${r.received}/${r.transmitted})`);
    t.equal(r.lossPercent, 0);
  });

  t.test('restartDockerd keeps restart-always containers and networks', { timeout: 120_000 }, async (t) => {
    await h2.docker('network', 'create', '--subnet', '10.98.0.0/24', 'plain2');
    await h2.docker('run', '-d', '--name', 'keep', '--restart', 'always', '--net', 'plain2', BUSYBOX_IMAGE, ...SLEEPER);
    const before = h2.dockerd?.pid;
    const t0 = Date.now();
    await h2.restartDockerd();
    t.comment(`dockerd restart took ${Date.now() - t0} ms`);
    t.not(h2.dockerd?.pid, before, 'new dockerd pid');
    await waitFor(() => h2.docker('inspect', '-f', '{{.State.Running}}', 'keep').then((s) => s.trim()), {
      what: 'container keep to run again', until: (s) => s === 'true', timeoutMs: 30_000,
    });
    await h2.runSleeper('fresh', '--net', 'plain2');
    const p = await h2.ping('fresh', 'keep', { viaDockerExec: true, count: 2 });
    t.ok(p.ok, p.output);
  });

  t.test('destroy is idempotent', { timeout: 120_000 }, async (t) => {
    const small = await Lab.create({ hosts: [{ name: 'x' }], image: false });
    await Promise.all([small.destroy(), small.destroy()]);
    await small.destroy();
    t.equal(existsSync(small.dir), false);
  });
}
