// tsoverlay as a managed (v2) plugin: built offline with plugin/build.sh,
// `docker plugin create` + `push` into a local registry from one lab host,
// `docker plugin install` from that registry on both, then the cross-host
// scenario through the managed plugin, its settings, disable/enable, a
// dockerd restart, an upgrade, its logs in dockerd's log, and what
// `docker plugin install --alias tsoverlay` gives a user.
//
// One lab: h1, h2 (MTU 1500) + one ZooKeeper server + the lab DNS server
// (upstream of the plugins' resolvers). The registry (Debian docker-registry)
// runs in each host's namespace on 127.0.0.1:<random port>, all instances on
// one storage directory (test/lab/registry.ts), so every host names it the
// same and nothing leaves the lab's namespaces. The plugin's rootfs is built
// once and cached across runs in $TSL_PLUGIN_CACHE (default
// /tmp/tsoverlay-plugin-cache; build.sh rebuilds it when dist/, the
// dependencies, config.json or build.sh change). The plugins leave with the
// lab's dockerds (their data roots are deleted).
//
// Needs root, TSOVERLAY_IT=1, a built project (npm run build) and the
// docker-registry package (scripts/install-deps.sh).
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import {
  assertReaches, buildPluginDir, CAP, labCliEnv, endpointOf, failureText, findPluginProcess, hasCap, hasNetwork, nodeFlagsOf, inspectPlugin, Lab, LabRegistry, pluginEnv,
  pluginLinesInDockerdLog, REGISTRY_BIN, run, timed, waitFor, waitNetwork, waitPluginProcess,
  type BuildPluginResult, type LabHost, type PluginProcess,
} from '../lab/index.js';

const REPO = 'tsoverlay';
const SUBNET = '10.40.1.0/24';
const NET = 'mp1';
/** The plugin's debug lines in dockerd.log: pino level 20 inside dockerd's quoted msg. */
const DEBUG_LINE = '\\"level\\":20';
/**
 * The plugins' ZooKeeper session timeout. Case 7 asserts that no ping is lost
 * while each node's plugin is disabled, upgraded (`docker plugin upgrade`
 * pulls and extracts the ~130 MB rootfs while the plugin is down) and enabled
 * again: that holds only while the node's session outlives the downtime. With
 * the default 10 s the downtime (12-17 s on the shared 2-core test machine,
 * on dockerd 20.10 and 28.5 alike) let the sessions expire, the peers dropped
 * the node's forwarding entries, and 3-7 s of pings were lost.
 */
const UPGRADE_SESSION_MS = 40_000;

if (process.env['TSOVERLAY_IT'] !== '1' || process.getuid?.() !== 0) {
  t.plan(0, 'integration tests need root and TSOVERLAY_IT=1');
} else {
  const { access } = await import('node:fs/promises');
  const haveRegistry = await access(REGISTRY_BIN).then(() => true, () => false);
  if (!haveRegistry) t.fail(`${REGISTRY_BIN} missing: install the docker-registry package (scripts/install-deps.sh)`);
  else await main();
}

async function main(): Promise<void> {
  const t0 = Date.now();
  // The rootfs does not need an engine: build it (or find it cached) while the lab comes up.
  const building = buildPluginDir().then((r) => r, (e: unknown) => e as Error);
  let lab: Lab;
  try {
    lab = await Lab.create({
      hosts: [{ name: 'h1', mtu: 1500 }, { name: 'h2', mtu: 1500 }],
      // tickTime 2000: sessions up to 40 s (20 ticks), see UPGRADE_SESSION_MS
      zookeeper: { servers: 1, tickTimeMs: 2000 },
      dnsServer: true,
    });
  } catch (e) {
    await building;
    t.fail(`lab could not be built: ${e instanceof Error ? e.message : String(e)}`);
    return;
  }
  let registry: LabRegistry | undefined;
  t.teardown(async () => {
    const problems = registry ? await registry.stop() : [];
    if (!t.passing()) {
      for (const h of lab.hosts) process.stderr.write(`\n===== logs of ${h} =====\n${await h.logs(150)}\n`);
    }
    await lab.destroy(t.passing() ? {} : { keepLogsIn: process.env['TSL_LOG_DIR'] ?? 'test-results/lab-logs' });
    if (problems.length) throw new Error(problems.join('\n'));
  });
  const [h1, h2] = [lab.host('h1'), lab.host('h2')];
  const hosts = [h1, h2];
  const built = await building;
  t.comment(`lab ${lab.id} up after ${Date.now() - t0} ms: underlay ${lab.subnet}, store ${lab.zkStore}`);
  if (built instanceof Error) {
    t.fail(`plugin/build.sh failed: ${failureText(built)}`);
    return;
  }
  t.comment(`${built.summary} (build.sh wall time ${built.ms} ms)`);

  // ------------------------------------------------------------------ helpers

  const stateDir = (h: LabHost) => join(h.dir, 'tsoverlay-state');
  /** Mount sources: each lab host has its own engine socket and state directory. */
  const mountSettings = (h: LabHost) => [`state.source=${stateDir(h)}`, `docker-socket.source=${h.dockerSock}`];
  const settingsFor = (h: LabHost) => [
    `TSOVERLAY_STORE=${lab.zkStore!}`,
    'TSOVERLAY_ADVERTISE=ul0',
    `TSOVERLAY_DNS_UPSTREAM=${lab.dnsServer!.address}`,
    `TSOVERLAY_NODE_NAME=${h.hostname}`,
    `TSOVERLAY_ZK_SESSION_TIMEOUT_MS=${UPGRADE_SESSION_MS}`,
    ...mountSettings(h),
  ];
  let ref = ''; // <registry>/tsoverlay:latest, the plugin's name on every host
  let installed = false;
  const needInstalled = (t: Test): boolean => {
    if (!installed) t.fail('the plugin is not installed (an earlier case failed)');
    return installed;
  };
  const proc = (h: LabHost, timeoutMs?: number): Promise<PluginProcess> => waitPluginProcess(h, h.hostname, timeoutMs);
  const pluginId = async (h: LabHost) => (await inspectPlugin(h, ref)).Id;
  const run1 = (h: LabHost, name: string, ...args: string[]) => h.runSleeper(name, '--net', NET, ...args);
  /** Reachable within 20 s, then 3 of 3 pings. */
  const reaches = (t: Test, h: LabHost, from: string, ip: string, msg: string) => assertReaches(t, h, from, ip, msg, 20_000);
  const debugLines = async (h: LabHost) => (await pluginLinesInDockerdLog(h, await pluginId(h))).filter((l) => l.includes(DEBUG_LINE));

  // -------------------------------------------------------------------- tests

  t.test('1. plugin create from the built directory, push to the lab registry', { timeout: 120_000 }, async (t) => {
    registry = await LabRegistry.start(lab, hosts);
    ref = registry.ref(REPO);
    t.comment(`registry: ${registry.address} in every host namespace, storage ${registry.dir}`);
    t.ok(built.rootfsBytes > 0 && built.rootfsBytes < 250 * 1048576, `rootfs ${(built.rootfsBytes / 1048576).toFixed(1)} MB (< 250 MB)`);
    // build.sh again: the rootfs is reused (stamp unchanged), then `docker plugin create` against h1
    let created: BuildPluginResult;
    try {
      created = await buildPluginDir({ name: ref, dockerHost: `unix://${h1.dockerSock}`, env: labCliEnv(lab.dir) });
    } catch (e) {
      t.fail(`build.sh --name ${ref} -H h1 failed: ${failureText(e)}`);
      return;
    }
    // (rebuilt only if dist/ or the dependencies changed in between, e.g. a concurrent npm run build)
    t.comment(`second build.sh run: rootfs ${created.built ? 'rebuilt (its inputs changed meanwhile)' : 'reused from the cache'}`);
    t.comment(`${created.summary.split('\n').pop() ?? ''}`);
    const p = await inspectPlugin(h1, ref);
    t.equal(p.Enabled, false, 'created plugin is disabled');
    t.same(p.Config.Entrypoint, ['/usr/bin/node', ...(await nodeFlagsOf('dist/cli.js')), '/app/dist/cli.js', 'serve'], 'entrypoint from config.json, with the node flags of the CLI');
    const push = await timed(() => h1.docker('plugin', 'push', ref));
    t.pass(`docker plugin push ${ref} (${push.ms} ms)`);
    t.same(await registry.tags(REPO), ['latest'], 'the registry lists tsoverlay:latest');
    await h1.docker('plugin', 'rm', ref); // h1 installs it from the registry like every other host
    t.comment(`create ${created.createSeconds ?? '?'} s, push ${push.ms} ms`);
  });

  t.test('2. docker plugin install from the registry on both hosts, with settings', { timeout: 120_000 }, async (t) => {
    if (!ref) {
      t.fail('no registry');
      return;
    }
    await Promise.all(hosts.map((h) => mkdir(stateDir(h), { recursive: true })));
    const results = await Promise.all(hosts.map((h) => timed(() => h.dockerTry('plugin', 'install', '--grant-all-permissions',
      ref.replace(/:latest$/, ''), ...settingsFor(h)))));
    for (const [i, h] of hosts.entries()) {
      const r = results[i]!;
      t.equal(r.value.code, 0, `${h.name}: docker plugin install (${r.ms} ms)`, { stderr: r.value.stderr, stdout: r.value.stdout.slice(-500) });
    }
    if (results.some((r) => r.value.code !== 0)) return;
    for (const h of hosts) {
      const p = await inspectPlugin(h, ref);
      t.equal(p.Name, ref, `${h.name}: plugin named ${ref}`);
      t.equal(p.Enabled, true, `${h.name}: enabled by install`);
      const env = pluginEnv(p);
      t.equal(env.get('TSOVERLAY_STORE'), lab.zkStore, `${h.name}: TSOVERLAY_STORE set`);
      t.equal(env.get('TSOVERLAY_NODE_NAME'), h.hostname, `${h.name}: TSOVERLAY_NODE_NAME set`);
      const pp = await proc(h);
      t.equal(pp.env.get('TSOVERLAY_ADVERTISE'), 'ul0', `${h.name}: the process (pid ${pp.pid}) runs with the settings, in the host's network namespace`);
      t.ok(hasCap(pp, CAP.NET_ADMIN), `${h.name}: CAP_NET_ADMIN`);
      t.ok(hasCap(pp, CAP.NET_BIND_SERVICE), `${h.name}: CAP_NET_BIND_SERVICE (Docker's default set) for the resolver on :53`);
      t.notOk(hasCap(pp, CAP.SYS_ADMIN), `${h.name}: no CAP_SYS_ADMIN`);
      t.comment(`${h.name}: plugin process CapEff 0x${pp.capEff.toString(16)} (NET_RAW ${hasCap(pp, CAP.NET_RAW) ? 'present, Docker default' : 'absent'})`);
      // the socket dockerd dials: /run/docker/plugins/<id>/tsoverlay.sock in the engine's view = <host>/plugins/<id>/
      const sock = join(h.pluginsDir, p.Id, 'tsoverlay.sock');
      const ls = await run('test', ['-S', sock]);
      t.equal(ls.code, 0, `${h.name}: plugin socket at ${sock}`);
      // what the plugin did through iptables, inside the host namespace
      const fwd = await h.hostExec('iptables', '-S', 'FORWARD');
      t.match(fwd.stdout, /-A FORWARD -i tsbr\+ -o tsbr\+ .*-j ACCEPT/, `${h.name}: the plugin's iptables (nft) added the FORWARD rule`);
      const input = await h.hostExec('iptables', '-S', 'INPUT');
      t.match(input.stdout, /169\.254\.53\.53/, `${h.name}: and the resolver's INPUT rules`);
    }
    installed = true;
  });

  t.test('3. cross-host with the managed plugin: network on h1 appears on h2, containers ping, names resolve', { timeout: 120_000 }, async (t) => {
    if (!needInstalled(t)) return;
    const created = await timed(() => h1.docker('network', 'create', '-d', ref, '--ipam-driver', ref, '--subnet', SUBNET, NET));
    t.pass(`docker network create -d ${ref} on h1 (${created.ms} ms)`);
    const t1 = Date.now();
    const onH2 = await waitNetwork(h2, NET, 30_000).catch((e: unknown) => e as Error);
    if (!t.notOk(onH2 instanceof Error, `${NET} replicated to h2 (${Date.now() - t1} ms)`, { error: String(onH2) }) || onH2 instanceof Error) return;
    t.equal(onH2.Driver, ref, `h2: driver is the tagged name ${ref}`);
    t.equal(onH2.IPAM.Driver, ref, 'h2: IPAM driver too');
    t.equal(onH2.IPAM.Config?.[0]?.Subnet, SUBNET, 'h2: same subnet');

    await run1(h1, 'c1');
    await run1(h2, 'c2', '--restart', 'always'); // comes back by itself after the dockerd restart (case 6)
    const [a, b] = [await endpointOf(h1, 'c1', NET), await endpointOf(h2, 'c2', NET)];
    await reaches(t, h1, 'c1', b.ip, `h1 c1 -> h2 c2 (${b.ip})`);
    await reaches(t, h2, 'c2', a.ip, `h2 c2 -> h1 c1 (${a.ip})`);

    // the plugin's resolver (bound to :53 inside the managed plugin) knows the other node's container
    const q = await waitFor(() => h1.dnsQuery('c1', '169.254.53.53', 'c2'), {
      what: 'c2 to resolve through 169.254.53.53 from c1', until: (r) => r.answers.some((x) => x.data === b.ip), timeoutMs: 15_000,
    }).catch((e: unknown) => e as Error);
    t.notOk(q instanceof Error, `c1 resolves c2 (h2) to ${b.ip} through the plugin's resolver`, { error: String(q) });
    const out = await h1.dnsQuery('c1', '169.254.53.53', 'outside.example');
    t.same(out.answers.map((x) => x.data), ['203.0.113.7'], 'other names go to TSOVERLAY_DNS_UPSTREAM (the lab DNS server)', { result: out });
  });

  t.test('4. docker plugin set: refused while enabled; disable -f, set TSOVERLAY_LOG_LEVEL=debug, enable', { timeout: 120_000 }, async (t) => {
    if (!needInstalled(t)) return;
    const a = await endpointOf(h1, 'c1', NET);
    t.same(await debugLines(h2), [], 'h2 logs no debug lines at the default level');
    const refused = await h2.dockerTry('plugin', 'set', ref, 'TSOVERLAY_LOG_LEVEL=debug');
    t.not(refused.code, 0, 'docker plugin set on an enabled plugin is refused');
    t.match(refused.stderr, /disable plugin before setting|active plugin/, 'with Docker\'s reason', { stderr: refused.stderr });
    const inUse = await h2.dockerTry('plugin', 'disable', ref);
    t.not(inUse.code, 0, 'docker plugin disable without -f is refused while a network uses it');
    const before = (await proc(h2)).pid;

    // traffic between c2 (h2) and c1 (h1) while h2's plugin is down: the kernel state stays
    const stream = await h2.pingStream('c2', a.ip, { interval: 0.02 });
    try {
      await stream.waitReplies(25, 10_000);
      const off = await timed(() => h2.docker('plugin', 'disable', '-f', ref));
      t.pass(`docker plugin disable -f (${off.ms} ms)`);
      const gone = await waitFor(() => findPluginProcess(h2, h2.hostname), { what: 'plugin process to exit', until: (p) => !p, timeoutMs: 15_000 })
        .then(() => true, () => false);
      t.ok(gone, 'the plugin process is gone');
      await h2.docker('plugin', 'set', ref, 'TSOVERLAY_LOG_LEVEL=debug');
      t.equal(pluginEnv(await inspectPlugin(h2, ref)).get('TSOVERLAY_LOG_LEVEL'), 'debug', 'inspect shows TSOVERLAY_LOG_LEVEL=debug');
      const seen = stream.replies;
      const on = await timed(() => h2.docker('plugin', 'enable', ref));
      t.pass(`docker plugin enable (${on.ms} ms)`);
      await stream.waitReplies(seen + 50, 10_000);
      const r = await stream.stop();
      t.comment(`ping c2 -> c1 across disable/set/enable: ${r.transmitted} sent, ${r.received} received`);
      t.equal(r.received, r.transmitted, 'no ping lost while the plugin was disabled', { output: r.output.slice(-400) });
    } finally {
      if (stream.proc.running) await stream.stop();
    }
    const after = await proc(h2);
    t.not(after.pid, before, `a new plugin process (pid ${after.pid})`);
    t.equal(after.env.get('TSOVERLAY_LOG_LEVEL'), 'debug', 'it runs with TSOVERLAY_LOG_LEVEL=debug');
    const dbg = await waitFor(() => debugLines(h2), { what: 'debug lines of the plugin in h2 dockerd.log', until: (l) => l.length > 0, timeoutMs: 15_000 })
      .catch((e: unknown) => e as Error);
    t.ok(Array.isArray(dbg) && dbg.length > 0, `h2 dockerd.log has the plugin's debug lines (${Array.isArray(dbg) ? dbg.length : 0})`);
    t.equal(await h2.dockerTry('network', 'inspect', NET).then((r) => r.code), 0, `${NET} still on h2`);
    await run1(h2, 'c3');
    await reaches(t, h2, 'c3', a.ip, 'new container c3 on h2 -> h1 c1');
  });

  t.test('5. docker plugin disable -f / enable on h1 keeps the network; new containers attach', { timeout: 120_000 }, async (t) => {
    if (!needInstalled(t)) return;
    const b = await endpointOf(h2, 'c2', NET);
    const before = (await proc(h1)).pid;
    await h1.docker('plugin', 'disable', '-f', ref);
    t.equal((await inspectPlugin(h1, ref)).Enabled, false, 'disabled');
    const bad = await timed(() => h1.dockerTry('run', '-d', '--name', 'cx', '--net', NET, 'busybox:local', 'true'));
    t.not(bad.value.code, 0, `docker run on the network fails while the plugin is disabled (after ${bad.ms} ms)`, { stderr: bad.value.stderr });
    await h1.removeContainer('cx');
    const on = await timed(() => h1.docker('plugin', 'enable', ref));
    t.pass(`enabled again (${on.ms} ms)`);
    t.not((await proc(h1)).pid, before, 'a new plugin process');
    const n = await h1.docker('network', 'inspect', '-f', '{{.Driver}}', NET).catch((e: unknown) => failureText(e));
    t.equal(n.trim(), ref, `${NET} still on h1 with driver ${ref}`);
    await run1(h1, 'c5');
    await reaches(t, h1, 'c5', b.ip, 'new container c5 on h1 -> h2 c2');
    await reaches(t, h1, 'c1', b.ip, 'old container c1 on h1 -> h2 c2');
  });

  t.test('6. dockerd restart: the plugin comes back before the containers; network kept, new containers attach', { timeout: 180_000 }, async (t) => {
    if (!needInstalled(t)) return;
    const a = await endpointOf(h1, 'c1', NET);
    const before = (await proc(h2)).pid;
    const r = await timed(() => h2.restartDockerd());
    t.pass(`h2 dockerd restarted (${r.ms} ms)`);
    const p = await inspectPlugin(h2, ref);
    t.equal(p.Enabled, true, 'plugin still enabled after the restart');
    const pp = await proc(h2, 30_000);
    t.not(pp.pid, before, `plugin restarted with dockerd (pid ${pp.pid})`);
    t.equal((await h2.dockerTry('network', 'inspect', NET)).code, 0, `${NET} kept on h2`);
    // c2 (--restart always) is restored by dockerd through the plugin
    const c2up = await waitFor(async () => (await h2.docker('container', 'inspect', '-f', '{{.State.Running}}', 'c2')).trim(), {
      what: 'c2 to run again', until: (s) => s === 'true', timeoutMs: 60_000,
    }).then(() => true, (e: unknown) => (t.comment(String(e)), false));
    t.ok(c2up, 'c2 (--restart always) runs again after the restart');
    if (c2up) {
      const b = await endpointOf(h2, 'c2', NET);
      await reaches(t, h2, 'c2', a.ip, `restored c2 (${b.ip}) -> h1 c1`);
      await reaches(t, h1, 'c1', b.ip, 'h1 c1 -> restored c2');
    }
    await h2.removeContainer('c6');
    await run1(h2, 'c6');
    await reaches(t, h2, 'c6', a.ip, 'new container c6 on h2 -> h1 c1');
    // the setting made in case 4 survived the restart
    t.equal(pp.env.get('TSOVERLAY_LOG_LEVEL'), 'debug', 'TSOVERLAY_LOG_LEVEL=debug survived the restart');
  });

  t.test('7. upgrade: disable -f, docker plugin upgrade, enable -- networks, settings and traffic stay', { timeout: 180_000 }, async (t) => {
    if (!needInstalled(t) || !registry) return;
    // "v2": the same build plus a marker file (a different layer) and another description
    const v2dir = join(lab.dir, 'plugin-v2');
    await mkdir(v2dir, { recursive: true });
    const cpr = await run('cp', ['-al', join(built.dir, 'rootfs'), join(v2dir, 'rootfs')]);
    if (cpr.code !== 0) await cp(join(built.dir, 'rootfs'), join(v2dir, 'rootfs'), { recursive: true, verbatimSymlinks: true });
    await writeFile(join(v2dir, 'rootfs', 'app', 'BUILD'), `upgrade-test ${lab.id}\n`);
    const cfg = JSON.parse(await readFile(join(built.dir, 'config.json'), 'utf8')) as { description: string };
    cfg.description += ' (upgrade test)';
    await writeFile(join(v2dir, 'config.json'), JSON.stringify(cfg, null, 2));
    const ref2 = registry.ref(REPO, 'v2');
    const c = await timed(async () => {
      await h1.docker('plugin', 'create', ref2, v2dir);
      await h1.docker('plugin', 'push', ref2);
      await h1.docker('plugin', 'rm', ref2);
    });
    t.pass(`${ref2} created, pushed (${c.ms} ms)`);

    const a = await endpointOf(h1, 'c1', NET);
    const stream = await h2.pingStream('c2', a.ip, { interval: 0.02 });
    try {
      await stream.waitReplies(25, 10_000);
      for (const h of hosts) {
        const envBefore = pluginEnv(await inspectPlugin(h, ref));
        const up = await timed(async () => {
          await h.docker('plugin', 'disable', '-f', ref);
          await h.docker('plugin', 'upgrade', '--grant-all-permissions', '--skip-remote-check', ref, ref2);
          // dockerd 20.10 resets mount sources to the new config.json's defaults on upgrade
          // (inspect still shows the old ones): set them again before enabling
          if (h === h2) {
            const e = await h.dockerTry('plugin', 'enable', ref);
            t.comment(`h2: enable right after upgrade, without setting the mount sources again: ${e.code === 0 ? 'worked' : `failed: ${e.stderr.trim()}`}`);
            if (e.code === 0) await h.docker('plugin', 'disable', '-f', ref);
          }
          await h.docker('plugin', 'set', ref, ...mountSettings(h));
          await h.docker('plugin', 'enable', ref);
        });
        t.pass(`${h.name}: disable -f, upgrade, set mounts, enable (${up.ms} ms)`);
        const p = await inspectPlugin(h, ref);
        t.equal(p.Name, ref, `${h.name}: still named ${ref} (networks keep their driver)`);
        t.equal(p.PluginReference, ref2, `${h.name}: now from ${ref2}`);
        t.match(p.Config.Description, /upgrade test/, `${h.name}: the new config`);
        t.same(pluginEnv(p), envBefore, `${h.name}: settings (env) kept`);
        const pp = await proc(h);
        const marker = await readFile(`/proc/${pp.pid}/root/app/BUILD`, 'utf8').catch(() => '');
        t.match(marker, /upgrade-test/, `${h.name}: the running plugin is the new build`);
        t.equal(pp.env.get('TSOVERLAY_STORE'), lab.zkStore, `${h.name}: and runs with the ZooKeeper store`);
        const d = await h.docker('network', 'inspect', '-f', '{{.Driver}}', NET).catch((e: unknown) => failureText(e));
        t.equal(d.trim(), ref, `${h.name}: ${NET} kept`);
      }
      const seen = stream.replies;
      await stream.waitReplies(seen + 25, 10_000);
      const r = await stream.stop();
      t.comment(`ping c2 -> c1 across both upgrades: ${r.transmitted} sent, ${r.received} received`);
      t.equal(r.received, r.transmitted, 'no ping lost during the rolling upgrade', { output: r.output.slice(-400) });
    } finally {
      if (stream.proc.running) await stream.stop();
    }
    await run1(h1, 'c7');
    await run1(h2, 'c8');
    const c8 = await endpointOf(h2, 'c8', NET);
    await reaches(t, h1, 'c7', c8.ip, 'after the upgrade: new h1 c7 -> new h2 c8');
  });

  t.test('8. the plugin\'s output reaches dockerd\'s log', { timeout: 60_000 }, async (t) => {
    if (!needInstalled(t)) return;
    for (const h of hosts) {
      const id = await pluginId(h);
      const lines = await pluginLinesInDockerdLog(h, id);
      const ready = lines.filter((l) => l.includes('tsoverlay ready'));
      t.ok(ready.length >= 2, `${h.name}: dockerd.log has ${lines.length} lines of plugin ${id.slice(0, 12)}, ${ready.length} "tsoverlay ready"`);
      const m = /msg="((?:[^"\\]|\\.)*)"/.exec(ready[0] ?? '');
      const parsed = (() => {
        try {
          return JSON.parse(JSON.parse(`"${m?.[1] ?? ''}"`) as string) as { node?: string; level?: number };
        } catch {
          return undefined;
        }
      })();
      t.equal(parsed?.node, h.hostname, `${h.name}: a line is the plugin's pino JSON with its node name`, { line: ready[0] });
    }
  });

  // Last, as it takes h2 out of the cluster network: h2's plugin is removed and
  // installed again under the alias, alone (replication would hand h1 networks
  // under a driver name h1 does not have, see README "Install and configure").
  t.test('9. docker plugin install --alias tsoverlay: -d and --ipam-driver need the tagged alias tsoverlay:latest', { timeout: 120_000 }, async (t) => {
    if (!needInstalled(t)) return;
    for (const c of ['c2', 'c3', 'c6', 'c8']) await h2.removeContainer(c);
    await h2.docker('plugin', 'rm', '-f', ref); // -f: disabled first, though networks use it
    const inst = await timed(() => h2.dockerTry('plugin', 'install', '--alias', 'tsoverlay', '--grant-all-permissions',
      ref.replace(/:latest$/, ''), ...settingsFor(h2)));
    if (!t.equal(inst.value.code, 0, `h2: docker plugin install --alias tsoverlay (${inst.ms} ms)`, { stderr: inst.value.stderr })) return;
    t.equal((await inspectPlugin(h2, 'tsoverlay:latest')).Name, 'tsoverlay:latest', 'the plugin is named tsoverlay:latest');
    t.comment(`dockerd ${(await h2.docker('version', '--format', '{{.Server.Version}}')).trim()}`);
    // dockerd's plugin store finds `tsoverlay` (it adds :latest), but libnetwork
    // registered the drivers under the plugin's full name and looks -d and
    // --ipam-driver up verbatim, so the bare name is not found by either.
    const bare = await h2.dockerTry('network', 'create', '-d', 'tsoverlay', '--ipam-driver', 'tsoverlay:latest', '--subnet', '10.40.9.0/24', 'mpbare');
    t.not(bare.code, 0, '-d tsoverlay (no tag) is refused', { stderr: bare.stderr });
    t.match(bare.stderr, /could not resolve driver tsoverlay\b/, 'dockerd: the network driver tsoverlay is not in its registry');
    t.comment(`dockerd: ${bare.stderr.trim()}`);
    const bareIpam = await h2.dockerTry('network', 'create', '-d', 'tsoverlay:latest', '--ipam-driver', 'tsoverlay', '--subnet', '10.40.9.0/24', 'mpbare');
    t.not(bareIpam.code, 0, '--ipam-driver tsoverlay (no tag) is refused', { stderr: bareIpam.stderr });
    t.match(bareIpam.stderr, /ipam driver.*tsoverlay\b/i, 'dockerd: the IPAM driver tsoverlay is not found');
    t.comment(`dockerd: ${bareIpam.stderr.trim()}`);
    t.notOk(await hasNetwork(h2, 'mpbare'), 'the refused creates left no network mpbare');
    const tagged = await h2.dockerTry('network', 'create', '-d', 'tsoverlay:latest', '--ipam-driver', 'tsoverlay:latest', '--subnet', '10.40.9.0/24', 'mpalias');
    if (!t.equal(tagged.code, 0, '-d tsoverlay:latest works', { stderr: tagged.stderr })) return;
    for (const c of ['ca1', 'ca2']) await h2.runSleeper(c, '--net', 'mpalias');
    const a2 = await endpointOf(h2, 'ca2', 'mpalias');
    await reaches(t, h2, 'ca1', a2.ip, 'ca1 -> ca2 on the aliased plugin\'s network');
    t.comment(`whole file: ${Math.round((Date.now() - t0) / 1000)} s`);
  });
}
