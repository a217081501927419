// `tsoverlay cleanup` on a real host: one dockerd host with the plugin
// (embedded store), a network of each layout with a container on each.
// While the plugin runs, cleanup is refused and changes nothing; with the
// plugin stopped and the containers removed, the dry run lists the devices,
// rules and files and removes nothing; --yes leaves no tsoverlay device,
// iptables/ip6tables rule or chain, policy rule, table 5353 route, resolver
// address on lo, nor state file; a second run finds nothing.
// Needs root, TSOVERLAY_IT=1 and a built plugin (npm run build).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import t from 'tap';
import { createOverlay, nodeFlagsOf, run, type LabHost } from '../lab/index.js';
import { SKIP_REASON, integrationEnabled, labForFile } from '../lab/suite.js';

/** What a user would look at: `ip link`, `ip rule`, `ip route show table 5353`, `ip addr show lo`, `iptables-save`. */
const kernelView = async (h: LabHost) => {
  const ipOut = async (...args: string[]) => (await run('ip', ['-n', h.ns, ...args])).stdout;
  const save = async (cmd: string) => (await run('nsenter', [`--net=/run/netns/${h.ns}`, '--', cmd])).stdout;
  const links = (await ipOut('-o', 'link', 'show'))
    .split('\n')
    .map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1] ?? '')
    .filter((n) => /^ts(br-|vx-|h|c)/.test(n))
    .sort();
  const rules = (await ipOut('rule', 'show')).split('\n').filter((l) => /lookup 5353/.test(l));
  const routes = (await ipOut('route', 'show', 'table', '5353')).split('\n').filter((l) => l.trim() !== '');
  const lo = (await ipOut('-o', 'addr', 'show', 'dev', 'lo')).split('\n').filter((l) => l.includes('169.254.53.53'));
  const fw = [...(await save('iptables-save')).split('\n'), ...(await save('ip6tables-save')).split('\n')].filter((l) => /tsoverlay|TSOVERLAY-/i.test(l));
  return { links, rules, routes, lo, fw };
};

async function main(): Promise<void> {
  const lab = await labForFile(t, { hosts: [{ name: 'h1', mtu: 1500 }] }, { logLines: 80 });
  if (!lab) return;
  const h1 = lab.host('h1');
  await h1.startPlugin();
  const cli = join(process.cwd(), 'dist', 'cli.js');
  const clusterId = join(dirname(h1.zkSessionFile), 'cluster-id');
  const cleanup = async (...extra: string[]) => {
    const args = [
      `--net=/run/netns/${h1.ns}`, '--', process.execPath, ...(await nodeFlagsOf(cli)), cli, 'cleanup',
      '--socket', h1.pluginSocket, '--store', `file://${h1.storePath}`, '--session-file', h1.zkSessionFile, ...extra,
    ];
    return run('nsenter', args, { timeoutMs: 60_000 });
  };

  const macvlan = await createOverlay(h1, 'cl1', '10.62.0.0/24');
  const bridge = await createOverlay(h1, 'cl2', '10.62.1.0/24', { args: ['-o', 'tsoverlay.mode=bridge'] });
  await h1.runSleeper('ca', '--net', 'cl1');
  await h1.runSleeper('cb', '--net', 'cl2');
  const running = await kernelView(h1);
  t.comment(`before: ${JSON.stringify(running)}`);

  await t.test('refused while the plugin answers on its socket: exit 1, nothing changed', async (t) => {
    const r = await cleanup('--yes');
    t.equal(r.code, 1, r.stdout);
    t.match(r.stderr, /refused: the plugin answers on .*tsoverlay\.sock, so the plugin is running/);
    t.same(await kernelView(h1), running, 'nothing changed');
    t.ok(existsSync(h1.storePath), 'the store file stays');
  });

  let stopped = running;
  await t.test('dry run: lists what it would remove, removes nothing, exit 0', async (t) => {
    await h1.stopPlugin();
    await h1.docker('rm', '-f', 'ca', 'cb');
    stopped = await kernelView(h1);
    t.ok(stopped.links.includes(macvlan.vxlan) && stopped.links.includes(bridge.vxlan), `the networks' devices are there: ${stopped.links.join(' ')}`);
    t.ok(stopped.rules.length > 0 && stopped.lo.length > 0 && stopped.fw.length > 0, 'and the resolver rule, address and firewall rules');
    const r = await cleanup();
    t.equal(r.code, 0, r.stderr);
    for (const dev of stopped.links) t.match(r.stdout, `device ${dev} (`, `lists ${dev}`);
    t.match(r.stdout, /policy rule from 169\.254\.53\.53 lookup 5353 priority 5353/);
    t.match(r.stdout, /address 169\.254\.53\.53 on lo/);
    t.match(r.stdout, /firewall rule iptables -t filter -A FORWARD -i tsbr\+ -o tsbr\+/);
    t.match(r.stdout, /firewall rule iptables -t filter -A INPUT -d 169\.254\.53\.53\/32 -i tsbr\+ .* -j TSOVERLAY-DNS/, 'the jump into the resolver source filter');
    t.match(r.stdout, /firewall chain TSOVERLAY-DNS \(iptables -t filter\)/, 'and the chain');
    t.match(r.stdout, `file ${h1.storePath}`);
    t.match(r.stdout, `file ${clusterId}`);
    t.match(r.stdout, /Dry run: nothing was removed/);
    t.same(await kernelView(h1), stopped, 'nothing changed in the kernel');
    t.ok(existsSync(h1.storePath) && existsSync(clusterId), 'the state files stay');
    t.comment(r.stdout);
  });

  await t.test('--yes: no device, rule, chain, route, address or state file of tsoverlay is left', async (t) => {
    const started = performance.now();
    const r = await cleanup('--yes');
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /failed 0\./);
    t.same(await kernelView(h1), { links: [], rules: [], routes: [], lo: [], fw: [] }, 'nothing of tsoverlay in the kernel');
    for (const f of [h1.storePath, h1.zkSessionFile, clusterId, h1.pluginSocket]) t.notOk(existsSync(f), `${f} is gone`);
    t.ok(existsSync(h1.dir), "the lab host's directory (holding dockerd's files too) is kept");
    t.match(r.stdout, `kept directory ${h1.dir} (if empty then): it still holds`);
    t.comment(`cleanup --yes took ${Math.round(performance.now() - started)} ms:\n${r.stdout}`);
    const again = await cleanup();
    t.equal(again.code, 0);
    t.match(again.stdout, /nothing of tsoverlay's on this node/);
  });
}

if (!integrationEnabled()) {
  t.plan(0, SKIP_REASON);
} else {
  await main();
}
