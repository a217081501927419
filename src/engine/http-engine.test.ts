import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { type Server, createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { EngineError, type EngineEvent } from './engine.js';
import { HttpDockerEngine } from './http-engine.js';
import { silentLog } from '../log.js';
import { type Metrics, noMetrics } from '../metrics/metrics.js';

/** A stand-in dockerd on a Unix socket: one canned answer per "METHOD path". */
const fakeDockerd = async (t: Test, answers: Record<string, { status?: number; body: string }>, metrics?: Metrics) => {
  const dir = await mkdtemp(join(tmpdir(), 'tsoverlay-engine-'));
  const socket = join(dir, 'docker.sock');
  const seen: string[] = [];
  const server: Server = createServer((req, res) => {
    const key = `${req.method} ${req.url}`;
    seen.push(key);
    const a = answers[key] ?? (key === 'GET /version' ? { body: JSON.stringify({ ApiVersion: '1.41', MinAPIVersion: '1.12' }) } : { status: 404, body: JSON.stringify({ message: `no such thing: ${req.url}` }) });
    res.writeHead(a.status ?? 200, { 'content-type': 'application/json' });
    res.end(a.body);
  });
  server.listen(socket);
  await once(server, 'listening');
  t.teardown(async () => {
    server.closeAllConnections();
    server.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { engine: new HttpDockerEngine(`unix://${socket}`, silentLog, metrics), seen };
};

const NETWORK = {
  Id: 'n1',
  Name: 'blue',
  Driver: 'tsoverlay',
  EnableIPv6: false,
  Internal: true,
  Options: null,
  IPAM: { Driver: 'tsoverlay', Config: [{ Subnet: '10.9.0.0/24', Gateway: '10.9.0.1' }, {}] },
  Containers: { c1: { Name: 'web', EndpointID: 'e1', MacAddress: '02:42:0a:09:00:02' }, c2: { Name: 'half' } },
  Labels: { extra: 'fields are ignored' },
};

t.test('network answers are decoded into the port types', async (t) => {
  const { engine, seen } = await fakeDockerd(t, {
    'GET /v1.41/networks/n1': { body: JSON.stringify(NETWORK) },
    'GET /v1.41/networks': { body: JSON.stringify([{ ...NETWORK, Containers: {}, IPAM: { Driver: 'default', Config: null } }]) },
  });
  t.same(await engine.inspectNetwork('n1'), {
    id: 'n1',
    name: 'blue',
    driver: 'tsoverlay',
    ipamDriver: 'tsoverlay',
    subnets: [{ subnet: '10.9.0.0/24', gateway: '10.9.0.1' }],
    options: {},
    internal: true,
    ipv6: false,
    containers: 2,
    endpoints: [{ containerId: 'c1', name: 'web', endpointId: 'e1' }],
  });
  const [listed] = await engine.listNetworks([]);
  t.match(listed, { id: 'n1', ipamDriver: 'default', subnets: [], containers: 0, endpoints: [] });
  t.equal(await engine.inspectNetwork('gone'), undefined, '404 is "no such network"');
  t.same(seen, ['GET /version', 'GET /v1.41/networks/n1', 'GET /v1.41/networks', 'GET /v1.41/networks/gone'], 'the API version is asked once, then used');
});

t.test('container answers are decoded into the port types', async (t) => {
  const settings = { NetworkID: 'n1', EndpointID: 'e1', Aliases: null, IPAddress: '10.9.0.2', GlobalIPv6Address: '' };
  const { engine } = await fakeDockerd(t, {
    'GET /v1.41/containers/json': { body: JSON.stringify([{ Id: 'c1', Names: ['/web'], NetworkSettings: { Networks: { blue: settings, none: {} } } }]) },
    'GET /v1.41/containers/c1/json': { body: JSON.stringify({ Id: 'c1', Name: '/web', NetworkSettings: { Networks: { blue: { ...settings, Aliases: ['w'] } } } }) },
  });
  t.same(await engine.listContainers(), [{ id: 'c1', name: 'web', attachments: [{ networkId: 'n1', endpointId: 'e1', aliases: [], ipv4: '10.9.0.2' }] }]);
  t.same(await engine.inspectContainer('c1'), { id: 'c1', name: 'web', attachments: [{ networkId: 'n1', endpointId: 'e1', aliases: ['w'], ipv4: '10.9.0.2' }] });
  t.equal(await engine.inspectContainer('c2'), undefined);
});

t.test('a malformed answer is an EngineError naming the call and the problem', async (t) => {
  const { engine } = await fakeDockerd(t, {
    'GET /v1.41/networks/n1': { body: JSON.stringify({ ...NETWORK, Id: 7 }) },
    'GET /v1.41/networks': { body: JSON.stringify({ not: 'a list' }) },
    'GET /v1.41/containers/json': { body: 'this is not JSON' },
    'GET /v1.41/containers/c1/json': { body: JSON.stringify({ Id: 'c1', NetworkSettings: { Networks: { blue: { Aliases: 'w' } } } }) },
    'POST /v1.41/networks/create': { status: 201, body: JSON.stringify({ Warning: '' }) },
  });
  await t.rejects(engine.inspectNetwork('n1'), new EngineError('docker GET /networks/n1: unexpected answer from the engine: /Id must be string'));
  await t.rejects(engine.listNetworks([]), { name: 'EngineError', message: /GET \/networks: unexpected answer .*must be array/ });
  await t.rejects(engine.listContainers(), { name: 'EngineError', message: /containers\/json: unexpected answer/ });
  await t.rejects(engine.inspectContainer('c1'), { name: 'EngineError', message: /Aliases must be array/ });
  const spec = { name: 'red', driver: 'tsoverlay', ipamDriver: 'tsoverlay', subnets: [], options: {}, internal: false, ipv6: false, labels: {} };
  await t.rejects(engine.createNetwork(spec), { name: 'EngineError', message: /networks\/create: unexpected answer .*'Id'/ });
});

t.test('error answers keep the engine\'s message and status', async (t) => {
  const { engine } = await fakeDockerd(t, {
    'POST /v1.41/networks/create': { status: 409, body: JSON.stringify({ message: 'network with name red already exists' }) },
    'DELETE /v1.41/networks/n1': { status: 403, body: 'plain text' },
    'DELETE /v1.41/networks/n2': { status: 204, body: '' },
    'DELETE /v1.41/networks/n3': { status: 500, body: JSON.stringify({ message: 5 }) },
  });
  const spec = { name: 'red', driver: 'tsoverlay', ipamDriver: 'tsoverlay', subnets: [{ subnet: '10.1.0.0/24' }], options: {}, internal: false, ipv6: false, labels: {} };
  await t.rejects(engine.createNetwork(spec), { name: 'EngineError', status: 409, message: 'docker POST /networks/create: network with name red already exists' });
  await t.rejects(engine.removeNetwork('n1'), { status: 403, message: 'docker DELETE /networks/n1: plain text' });
  t.equal(await engine.removeNetwork('n2'), true);
  t.equal(await engine.removeNetwork('gone'), false);
  await t.rejects(engine.removeNetwork('n3'), { status: 500, message: 'docker DELETE /networks/n3: HTTP 500' });
});

t.test('events: decoded ones are delivered, malformed ones logged and skipped', async (t) => {
  const lines = [
    { Type: 'network', Action: 'create', Actor: { ID: 'n1', Attributes: { name: 'blue', type: 'tsoverlay' } } },
    { Type: 'network', Action: 'connect', Actor: { ID: 'n1', Attributes: { container: 5 } } },
    { Type: 'container', Action: 'start' },
  ];
  const body = `${lines.map((l) => JSON.stringify(l)).join('\n')}\n{garbage\n`;
  const filters = encodeURIComponent(JSON.stringify({ type: ['network', 'container'] }));
  const dir = await mkdtemp(join(tmpdir(), 'tsoverlay-engine-'));
  const socket = join(dir, 'docker.sock');
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    if (req.url === '/version') {
      res.end(JSON.stringify({ ApiVersion: '1.41' })); // the version is asked first, not pinned
      return;
    }
    t.equal(req.url, `/v1.41/events?filters=${filters}`);
    res.write(body); // and keep the stream open, like dockerd
  });
  server.listen(socket);
  await once(server, 'listening');
  const warned: unknown[] = [];
  const log = { ...silentLog, warn: (o: object) => void warned.push(o) };
  const engine = new HttpDockerEngine(`unix://${socket}`, log);
  const events: EngineEvent[] = [];
  const ac = new AbortController();
  await new Promise<void>((resolve) => {
    engine.watchEvents({ onEvent: (e) => void events.push(e) }, ac.signal);
    const poll = setInterval(() => events.length === 2 && warned.length === 2 && (clearInterval(poll), resolve()), 10);
  });
  ac.abort();
  server.closeAllConnections();
  server.close();
  await rm(dir, { recursive: true, force: true });
  t.same(events, [
    { type: 'network', action: 'create', id: 'n1', attributes: { name: 'blue', type: 'tsoverlay' } },
    { type: 'container', action: 'start', id: '', attributes: {} },
  ]);
  t.equal(warned.length, 2, 'the event with a non-string attribute and the unparsable line');
});

t.test('failed calls are reported to the metrics by resource and status; a 404 is an answer', async (t) => {
  const errors: Array<[string, string]> = [];
  const metrics: Metrics = { ...noMetrics, engineError: (resource, status) => errors.push([resource, status]) };
  const { engine } = await fakeDockerd(t, { 'GET /v1.41/networks': { status: 500, body: JSON.stringify({ message: 'daemon broke' }) } }, metrics);
  await t.rejects(engine.listNetworks([]), /daemon broke/);
  t.equal(await engine.inspectNetwork('gone'), undefined);
  t.same(errors, [['networks', '500']], 'the 500 counted, the 404 not');
  const dead = new HttpDockerEngine('unix:///nonexistent/docker.sock', silentLog, metrics);
  await t.rejects(dead.listContainers());
  t.same(errors.at(-1), ['version', 'none'], 'no answer at all: status none (the version is asked first)');
});
