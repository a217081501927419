// Real Docker clients against tsoverlay (issue 16, items 7 and 9), each case
// asserting what a user of that client would check:
//
// - docker compose (Debian 12's docker-compose 1.29): a project on h1 whose
//   file creates a tsoverlay network (driver and IPAM driver tsoverlay, a
//   subnet) and runs a service; a project on h2 that uses that network as
//   `external: true`; the h2 service reaches the h1 service by its service
//   name (through the plugin's resolver) and over HTTP; `docker-compose down`
//   on both leaves no network and no VXLAN device on any host.
// - docker-py (Debian 12's python3-docker, test/integration/clients/
//   docker_py_client.py): a network, a container with an alias and a fixed
//   IPv4 address, what docker-py's inspect shows of them, and their removal;
//   the alias also resolves on the other host.
// - Published ports: `docker run -p 8080:80 --net <tsoverlay network>` with
//   busybox httpd; a client outside the overlay (the switch namespace, and h2's
//   own namespace) gets the page through h1's port 8080. tsoverlay returns no
//   gateway, so dockerd attaches the container to docker_gwbridge, which
//   carries the published port.
//
// One lab for the whole file: h1, h2 + one ZooKeeper server; dockerd runs with
// --dns 169.254.53.53 and the plugins forward other names to the lab's own DNS
// server, so no query leaves the machine. Nothing is pulled: every image is
// the lab's offline busybox:local.
// Needs root, TSOVERLAY_IT=1, a built plugin (npm run build) and the Debian
// packages docker-compose and python3-docker (scripts/install-deps.sh).
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import {
  BUSYBOX_IMAGE, createOverlay, endpointOf, inspectNet, run, subnetOf, vxlanDevices, waitFor, waitNetwork, waitNetworkGone,
  type LabHost, type NetInfo, type RunResult,
} from '../lab/index.js';
import { SKIP_REASON, integrationEnabled, labForFile } from '../lab/suite.js';

/** The plugin's resolver address (dockerd --dns of every lab host). */
const R = '169.254.53.53';
/** Debian's clients, by path: a pip-installed docker-py or compose elsewhere on PATH is not what we test. */
const COMPOSE = '/usr/bin/docker-compose';
const PYTHON = '/usr/bin/python3';
const DOCKER_PY_CLIENT = join(dirname(fileURLToPath(import.meta.url)), 'clients', 'docker_py_client.py');
/** How long a network or a name may take to reach the other host. */
const SPREAD_WAIT_MS = 45_000;
const HTTP_REQUEST = 'GET / HTTP/1.0\r\n\r\n';
/** A container command serving `body` as / on port 80 with busybox httpd; exits at once on SIGTERM. */
const httpdCommand = (body: string): string[] =>
  ['sh', '-c', `mkdir -p /www && echo '${body}' > /www/index.html && trap 'exit 0' TERM INT; httpd -f -p 80 -h /www & wait`];

if (!integrationEnabled()) {
  t.plan(0, SKIP_REASON);
} else {
  await main();
}

async function main(): Promise<void> {
  const missing = [COMPOSE, PYTHON].filter((p) => !existsSync(p));
  if (missing.length) {
    t.fail(`missing ${missing.join(', ')}: install the Debian packages docker-compose and python3-docker (scripts/install-deps.sh)`);
    return;
  }
  const lab = await labForFile(t, {
    hosts: [{ name: 'h1' }, { name: 'h2' }],
    zookeeper: { servers: 1, tickTimeMs: 500 },
    dnsServer: true,
    dockerDns: [R],
    plugin: { store: 'zk', zkSessionTimeoutMs: 4000, dnsUpstream: 'lab' },
  }, { logLines: 150 });
  if (!lab) return;
  const [h1, h2] = [lab.host('h1'), lab.host('h2')];
  const hosts = [h1, h2];
  try {
    await Promise.all(hosts.map((h) => h.startPlugin()));
  } catch (e) {
    t.fail(`plugin did not start: ${e instanceof Error ? e.message : String(e)}`);
    return;
  }
  t.comment(`lab ${lab.id}: underlay ${lab.subnet}, store ${lab.zkStore}, dockerd ${h1.engineVersion} --dns ${h1.dockerDns.join(',')}`);

  // ------------------------------------------------------------------ helpers

  /** A client's environment: this lab's docker CLI config, none of the caller's Docker or Python settings. */
  const clientEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => {
    const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_CONFIG: join(lab.dir, 'docker-cli'), PYTHONNOUSERSITE: '1', ...extra };
    for (const k of ['DOCKER_HOST', 'DOCKER_CONTEXT', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH', 'PYTHONPATH', 'PYTHONHOME',
      'COMPOSE_FILE', 'COMPOSE_PROJECT_NAME', 'COMPOSE_INTERACTIVE_NO_CLI']) {
      if (!(k in extra)) delete env[k];
    }
    return env;
  };
  const out = (r: RunResult | undefined) => (r ? `${r.stdout}${r.stderr}`.trim() : '(none)');

  interface Project { host: LabHost; name: string; dir: string }
  /** Write a compose project (its docker-compose.yml) under the lab directory. */
  const project = async (host: LabHost, name: string, yaml: string): Promise<Project> => {
    const dir = join(lab.dir, 'compose', name);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'docker-compose.yml'), yaml);
    return { host, name, dir };
  };
  /** docker-compose -H unix://<host's socket> -p NAME ... in the project's directory. */
  const compose = (p: Project, ...args: string[]): Promise<RunResult> =>
    run(COMPOSE, ['-H', `unix://${p.host.dockerSock}`, '--ansi', 'never', '-p', p.name, '-f', join(p.dir, 'docker-compose.yml'), ...args],
      { cwd: p.dir, env: clientEnv(), timeoutMs: 240_000 });
  /** The id of a compose service's container (docker-compose ps -q SERVICE). */
  const serviceContainer = async (p: Project, service: string): Promise<string | undefined> => {
    const r = await compose(p, 'ps', '-q', service);
    return r.code === 0 ? r.stdout.trim().split('\n')[0] || undefined : undefined;
  };

  /** Probe until `until` holds or timeoutMs passes; never throws. */
  const eventually = async <T>(probe: () => Promise<T>, until: (v: T) => boolean, what: string, timeoutMs = SPREAD_WAIT_MS) => {
    const t0 = Date.now();
    let value: T | undefined;
    try {
      await waitFor(async () => (value = await probe()), { what, until, timeoutMs, intervalMs: 250 });
      return { ok: true, value, ms: Date.now() - t0 };
    } catch (e) {
      return { ok: false, value, ms: Date.now() - t0, error: e instanceof Error ? e.message.slice(0, 2000) : String(e) };
    }
  };

  /** The address busybox ping printed it resolved a name to. */
  const resolvedIp = (r: RunResult | undefined) => /^PING \S+ \(([\d.]+)\)/m.exec(r?.stdout ?? '')?.[1];

  /** busybox nc sending an HTTP/1.0 GET from a network namespace (nsenter --net=...). */
  const httpGetFromNs = (nsPath: string, ip: string, port: number) =>
    run('nsenter', [`--net=${nsPath}`, '--', 'busybox', 'nc', '-w', '3', ip, String(port)], { input: HTTP_REQUEST, timeoutMs: 15_000 });

  /** Networks named `name` on every host, and tsoverlay's VXLAN devices, until none is left anywhere. */
  const assertGoneEverywhere = async (t: Test, name: string) => {
    for (const h of hosts) {
      const gone = await waitNetworkGone(h, name, SPREAD_WAIT_MS).then(() => true, () => false);
      t.ok(gone, `network ${name} is gone from ${h.name}`);
    }
    for (const h of hosts) {
      const devs = await eventually(() => vxlanDevices(h), (d) => d.length === 0, `no tsvx-* device on ${h.name}`, 20_000);
      t.ok(devs.ok, `no tsvx-* device left on ${h.name}`, { devices: devs.value });
    }
  };

  /** The network as docker shows it, checked for tsoverlay drivers and the subnet. */
  const assertTsoverlayNet = (t: Test, h: LabHost, n: NetInfo, subnet: string) => {
    t.equal(n.Driver, 'tsoverlay', `${h.name}: ${n.Name} has driver tsoverlay`);
    t.equal(n.IPAM.Driver, 'tsoverlay', `${h.name}: ${n.Name} has IPAM driver tsoverlay`);
    t.equal(subnetOf(n), subnet, `${h.name}: ${n.Name} has subnet ${subnet}`, { ipam: n.IPAM });
  };

  // ------------------------------------------------------------ the clients

  t.test('docker compose: a service on h2 reaches a service on h1 by its service name; down on both cleans up', { timeout: 420_000 }, async (t) => {
    const NET = 'cmpnet';
    const SUBNET = '10.41.1.0/24';
    const BODY = 'hello from compose api on h1';
    const web = await project(h1, 'cmpweb', [
      '# project on h1: creates the tsoverlay network and runs the service "api"',
      'services:',
      '  api:',
      `    image: ${BUSYBOX_IMAGE}`,
      '    pull_policy: never',
      `    command: ${JSON.stringify(httpdCommand(BODY))}`,
      '    stop_grace_period: 5s',
      '    networks:',
      '      - shared',
      'networks:',
      '  shared:',
      `    name: ${NET}`,
      '    driver: tsoverlay',
      '    ipam:',
      '      driver: tsoverlay',
      '      config:',
      `        - subnet: ${SUBNET}`,
      '',
    ].join('\n'));
    const cli = await project(h2, 'cmpcli', [
      '# project on h2: uses the network of the project on h1 and runs the service "client"',
      'services:',
      '  client:',
      `    image: ${BUSYBOX_IMAGE}`,
      '    pull_policy: never',
      `    command: ${JSON.stringify(['sh', '-c', "trap 'exit 0' TERM INT; sleep 86400 & wait"])}`,
      '    stop_grace_period: 5s',
      '    networks:',
      '      - shared',
      'networks:',
      '  shared:',
      '    external: true',
      `    name: ${NET}`,
      '',
    ].join('\n'));
    const downs = new Map<Project, RunResult>();
    t.teardown(async () => {
      // whatever a failed assertion left: h2's project first (it uses h1's network)
      for (const p of [cli, web]) if (!downs.has(p)) await compose(p, 'down', '--timeout', '5');
    });

    const v = await run(COMPOSE, ['version', '--short'], { env: clientEnv() });
    t.comment(`docker-compose ${v.stdout.trim()} (${COMPOSE})`);

    // h1: the project creates the network and starts api
    const up1 = await compose(web, 'up', '-d');
    if (!t.equal(up1.code, 0, 'docker-compose up -d on h1', { output: out(up1) })) return;
    t.notMatch(out(up1), /Pulling/, 'nothing was pulled on h1 (busybox:local is there)', { output: out(up1) });
    t.match(out(up1), new RegExp(`Creating network "${NET}" with driver "tsoverlay"`), 'compose created the network with driver tsoverlay', { output: out(up1) });
    const n1 = await inspectNet(h1, NET);
    assertTsoverlayNet(t, h1, n1, SUBNET);
    const labels = JSON.parse(await h1.docker('network', 'inspect', '-f', '{{json .Labels}}', NET)) as Record<string, string> | null;
    t.equal(labels?.['com.docker.compose.project'], web.name, `${NET} carries the compose project label ${web.name}`, { labels });
    const apiId = await serviceContainer(web, 'api');
    if (!t.ok(apiId, 'docker-compose ps -q api gives the container')) return;
    const apiEp = await endpointOf(h1, apiId!, NET);
    t.ok(apiEp.ip.startsWith('10.41.1.'), `api has ${apiEp.ip} on ${NET}`);
    const apiAliases = JSON.parse(await h1.docker('inspect', '-f', `{{json (index .NetworkSettings.Networks "${NET}").Aliases}}`, apiId!)) as string[] | null;
    t.ok(apiAliases?.includes('api'), `compose gave the api container the alias "api" on ${NET}`, { aliases: apiAliases });

    // h2: the network reaches h2, and the second project uses it as external
    const n2 = await waitNetwork(h2, NET, SPREAD_WAIT_MS).catch(() => undefined);
    if (!t.ok(n2, `${NET} appears on h2`)) return;
    assertTsoverlayNet(t, h2, n2!, SUBNET);
    const up2 = await compose(cli, 'up', '-d');
    if (!t.equal(up2.code, 0, 'docker-compose up -d on h2 (network external: true)', { output: out(up2) })) return;
    t.notMatch(out(up2), /Pulling|Creating network/, 'on h2 compose neither pulled nor created a network', { output: out(up2) });
    const clientId = await serviceContainer(cli, 'client');
    if (!t.ok(clientId, 'docker-compose ps -q client gives the container')) return;
    const clientEp = await endpointOf(h2, clientId!, NET);
    t.ok(clientEp.ip.startsWith('10.41.1.') && clientEp.ip !== apiEp.ip, `client has ${clientEp.ip} on ${NET}`);

    // what a user types: docker-compose exec client ping api
    const byName = await eventually(() => compose(cli, 'exec', '-T', 'client', 'ping', '-c', '1', '-W', '2', 'api'),
      (r) => r.code === 0 && resolvedIp(r) === apiEp.ip, 'client (h2) to ping api by name');
    t.ok(byName.ok, `h2: docker-compose exec client ping api -> ${apiEp.ip} on h1 (after ${byName.ms} ms)`,
      { output: out(byName.value), error: byName.error });
    const ns = await compose(cli, 'exec', '-T', 'client', 'nslookup', 'api');
    t.ok(ns.code === 0 && ns.stdout.includes(apiEp.ip), `h2: nslookup api in client gives ${apiEp.ip}`, { output: out(ns) });
    // and the service itself: HTTP to api:80 by name from h2
    const http = await eventually(
      () => compose(cli, 'exec', '-T', 'client', 'sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 api 80`),
      (r) => r.stdout.includes(BODY), 'client (h2) to GET http://api/');
    t.ok(http.ok, `h2: GET http://api/ from client answers "${BODY}" (after ${http.ms} ms)`, { output: out(http.value), error: http.error });
    // the other way round: api on h1 reaches client by its service name
    const back = await eventually(() => compose(web, 'exec', '-T', 'api', 'ping', '-c', '1', '-W', '2', 'client'),
      (r) => r.code === 0 && resolvedIp(r) === clientEp.ip, 'api (h1) to ping client by name');
    t.ok(back.ok, `h1: docker-compose exec api ping client -> ${clientEp.ip} on h2 (after ${back.ms} ms)`, { output: out(back.value), error: back.error });

    // down: h2's project leaves the external network alone, h1's removes it everywhere
    const down2 = await compose(cli, 'down', '--timeout', '5');
    downs.set(cli, down2);
    t.equal(down2.code, 0, 'docker-compose down on h2', { output: out(down2) });
    t.match(out(down2), new RegExp(`Network ${NET} is external, skipping`), 'h2: compose leaves the external network alone', { output: out(down2) });
    t.equal((await h2.docker('ps', '-aq', '--filter', `label=com.docker.compose.project=${cli.name}`)).trim(), '', 'h2: no container of the project is left');
    for (const h of hosts) t.ok((await h.dockerTry('network', 'inspect', NET)).code === 0, `${NET} still on ${h.name} after h2's down`);
    const down1 = await compose(web, 'down', '--timeout', '5');
    downs.set(web, down1);
    t.equal(down1.code, 0, 'docker-compose down on h1', { output: out(down1) });
    t.match(out(down1), new RegExp(`Removing network ${NET}`), 'h1: compose removes the network', { output: out(down1) });
    t.equal((await h1.docker('ps', '-aq', '--filter', `label=com.docker.compose.project=${web.name}`)).trim(), '', 'h1: no container of the project is left');
    await assertGoneEverywhere(t, NET);
  });

  t.test('docker-py: a network, a container with an alias and a fixed address, inspect, removal', { timeout: 300_000 }, async (t) => {
    const NET = 'pynet';
    const SUBNET = '10.41.2.0/24';
    const IP = '10.41.2.77';
    const ALIAS = 'pyalias';
    const NAME = 'pyc';
    const py = (...args: string[]) => run(PYTHON, ['-s', DOCKER_PY_CLIENT, ...args], { env: clientEnv(), timeoutMs: 240_000 });
    const parse = (r: RunResult): Record<string, any> | undefined => {
      try {
        return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as Record<string, any>;
      } catch {
        return undefined;
      }
    };
    let downDone = false;
    const peer = 'pypeer';
    t.teardown(async () => {
      await h2.removeContainer(peer).catch(() => undefined);
      if (!downDone) await py('down', h1.dockerSock, NET, NAME);
    });

    const upRun = await py('up', h1.dockerSock, NET, SUBNET, NAME, IP, ALIAS, BUSYBOX_IMAGE);
    const up = parse(upRun);
    if (!t.ok(upRun.code === 0 && up && !up['error'], 'docker_py_client.py up exits 0 with JSON', { output: out(upRun) })) return;
    t.comment(`docker-py ${up!['dockerPy']} (${up!['dockerPyFile']}), API ${up!['apiVersion']}`);
    t.match(up!['dockerPyFile'], /^\/usr\/lib\/python3\/dist-packages\/docker\//, 'the client is Debian\'s python3-docker');
    const net = up!['network'];
    const c = up!['container'];
    t.equal(net.name, NET, 'network name');
    t.equal(net.driver, 'tsoverlay', 'docker-py: network driver tsoverlay');
    t.equal(net.ipamDriver, 'tsoverlay', 'docker-py: IPAM driver tsoverlay');
    t.same(net.subnets, [SUBNET], `docker-py: subnet ${SUBNET}`);
    t.ok((net.containers as string[]).includes(c.id), 'docker-py: the network lists the container', { containers: net.containers });
    t.equal(c.status, 'running', 'docker-py: container running');
    t.same(c.networks, [NET], `docker-py: the container is on ${NET} only`);
    t.equal(c.ipAddress, IP, `docker-py: the container's address is the fixed ${IP}`);
    t.equal(c.ipamIPv4, IP, `docker-py: IPAMConfig.IPv4Address is ${IP}`);
    t.ok((c.aliases as string[]).includes(ALIAS), `docker-py: alias ${ALIAS} present`, { aliases: c.aliases });
    t.equal(c.ipAddrShow.exitCode, 0, 'exec_run ip addr in the container');
    t.match(c.ipAddrShow.output, new RegExp(`inet ${IP.replace(/\./g, '\\.')}/24`), `the container's interface holds ${IP}/24`, { output: c.ipAddrShow.output });

    // the docker CLI on the other host sees the same network, and the alias resolves there
    const n2 = await waitNetwork(h2, NET, SPREAD_WAIT_MS).catch(() => undefined);
    if (t.ok(n2, `${NET} appears on h2`)) {
      assertTsoverlayNet(t, h2, n2!, SUBNET);
      await h2.runSleeper(peer, '--net', NET);
      const byAlias = await eventually(() => h2.dockerTry('exec', peer, 'ping', '-c', '1', '-W', '2', ALIAS),
        (r) => r.code === 0 && resolvedIp(r) === IP, `${peer} (h2) to ping ${ALIAS}`);
      t.ok(byAlias.ok, `h2: ping ${ALIAS} -> ${IP} on h1 (after ${byAlias.ms} ms)`, { output: out(byAlias.value), error: byAlias.error });
      await h2.removeContainer(peer);
    }

    const downRun = await py('down', h1.dockerSock, NET, NAME);
    downDone = true;
    const down = parse(downRun);
    t.ok(downRun.code === 0 && down && !down['error'], 'docker_py_client.py down exits 0 with JSON', { output: out(downRun) });
    t.same(down?.['removed'], ['container', 'network'], 'docker-py removed the container and the network');
    t.same(down?.['networksLeft'], [], `docker-py lists no ${NET} afterwards`);
    t.equal((await h1.dockerTry('container', 'inspect', NAME)).code, 1, `container ${NAME} is gone from h1`);
    await assertGoneEverywhere(t, NET);
  });

  t.test('published port: -p 8080:80 on a tsoverlay network answers clients outside the overlay', { timeout: 300_000 }, async (t) => {
    const NET = 'pubnet';
    const SUBNET = '10.41.3.0/24';
    const NAME = 'pubweb';
    const BODY = 'hello from pubweb on h1';
    t.teardown(async () => {
      await h1.removeContainer(NAME).catch(() => undefined);
      await h1.dockerTry('network', 'rm', NET);
    });
    await createOverlay(h1, NET, SUBNET);
    await h1.docker('run', '-d', '--name', NAME, '-p', '8080:80', '--net', NET, BUSYBOX_IMAGE, ...httpdCommand(BODY));
    const ep = await endpointOf(h1, NAME, NET);
    const port = (await h1.docker('port', NAME, '80/tcp')).trim();
    t.match(port, /^0\.0\.0\.0:8080$/m, `docker port ${NAME} 80/tcp: 0.0.0.0:8080`, { port });

    // no gateway from tsoverlay: dockerd added docker_gwbridge, the container's way out
    const gw = await inspectNet(h1, 'docker_gwbridge').catch(() => undefined);
    const gwSubnet = gw ? subnetOf(gw) : undefined;
    const addrs = (await h1.nsExec(NAME, 'ip', '-4', '-o', 'addr', 'show')).stdout;
    const routes = (await h1.nsExec(NAME, 'ip', '-4', 'route', 'show')).stdout;
    const gwAddr = gwSubnet ? new RegExp(`inet (${gwSubnet.split('.').slice(0, 2).join('\\.')}\\.[\\d.]+)/`).exec(addrs)?.[1] : undefined;
    t.ok(gw && gwAddr, `${NAME} is attached to docker_gwbridge (${gwSubnet}): ${gwAddr}`, { addrs, gwSubnet });
    t.match(routes, /^default via \S+ dev eth\d+/m, `${NAME} has a default route (via docker_gwbridge)`, { routes });
    t.match(addrs, new RegExp(`inet ${ep.ip.replace(/\./g, '\\.')}/24`), `${NAME} keeps ${ep.ip} on ${NET}`, { addrs });
    // dockerd's port mapping goes to the docker_gwbridge address, not the overlay one
    const nat = (await h1.hostExec('iptables', '-t', 'nat', '-S')).stdout;
    const dnat = nat.split('\n').find((l) => /--dport 8080\b/.test(l) && / -j DNAT /.test(l));
    t.ok(gwAddr && dnat?.includes(`--to-destination ${gwAddr}:80`), `h1 NAT: tcp/8080 -> ${gwAddr}:80 (docker_gwbridge)`, { rule: dnat, nat });

    const diagnose = async () => ({
      natRules: (await h1.hostExec('iptables', '-t', 'nat', '-S')).stdout,
      filterRules: (await h1.hostExec('iptables', '-S')).stdout,
      dockerd: (await h1.logs(40)),
    });
    // the switch namespace: outside every host and outside the overlay
    const fromSwitch = await eventually(() => httpGetFromNs(`/run/netns/${lab.switchNs}`, h1.ip, 8080),
      (r) => r.stdout.includes(BODY), `GET http://${h1.ip}:8080/ from the switch`, 30_000);
    t.ok(fromSwitch.ok, `from the switch (${lab.outsideIp}): GET http://${h1.ip}:8080/ answers "${BODY}" (after ${fromSwitch.ms} ms)`,
      { output: out(fromSwitch.value), error: fromSwitch.error, ...(fromSwitch.ok ? {} : await diagnose()) });
    if (fromSwitch.ok) t.match(fromSwitch.value!.stdout, /^HTTP\/1\.[01] 200 /, 'HTTP 200', { output: fromSwitch.value!.stdout });
    // another lab host's own namespace, over the underlay (not the overlay)
    const fromH2 = await eventually(() => httpGetFromNs(`/run/netns/${h2.ns}`, h1.ip, 8080),
      (r) => r.stdout.includes(BODY), `GET http://${h1.ip}:8080/ from h2's namespace`, 30_000);
    t.ok(fromH2.ok, `from h2's namespace (${h2.ip}): GET http://${h1.ip}:8080/ answers "${BODY}" (after ${fromH2.ms} ms)`,
      { output: out(fromH2.value), error: fromH2.error, ...(fromH2.ok ? {} : await diagnose()) });
    // control: the overlay address itself is not reachable from outside
    const direct = await httpGetFromNs(`/run/netns/${lab.switchNs}`, ep.ip, 80);
    t.notOk(direct.stdout.includes(BODY), `control: the switch cannot reach ${ep.ip}:80 on the overlay directly`, { output: out(direct) });

    await h1.removeContainer(NAME);
    await h1.docker('network', 'rm', NET);
    await assertGoneEverywhere(t, NET);
    const after = await httpGetFromNs(`/run/netns/${lab.switchNs}`, h1.ip, 8080);
    t.notOk(after.stdout.includes(BODY), 'after docker rm, port 8080 answers no more', { output: out(after) });
  });

  t.test('the plugins are still alive', async (t) => {
    for (const h of hosts) t.ok(h.plugin?.running, `${h.name}: plugin running`, { exit: h.plugin?.exit });
  });
}
