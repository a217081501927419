import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../config.js';
import { statusChecks } from './doctor-command.js';
import { allowedSources, checkDaemonDns, checkPluginSocket, judgeResolverSources } from './doctor-checks.js';
import type { StatusReport } from './status-model.js';

const dir = mkdtempSync(join(tmpdir(), 'tsoverlay-doctor-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('daemon.json dns: first is ok, present but later or absent is a warning with the fix', async (t) => {
  const file = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  t.match(await checkDaemonDns(file('a.json', '{"dns":["169.254.53.53","1.1.1.1"]}'), '169.254.53.53'), { status: 'ok' });
  t.match(await checkDaemonDns(file('b.json', '{"dns":["1.1.1.1","169.254.53.53"]}'), '169.254.53.53'), { status: 'warn', detail: /not first/ });
  const none = await checkDaemonDns(file('c.json', '{}'), '169.254.53.53');
  t.match(none, { status: 'warn', fix: /"dns": \["169\.254\.53\.53"/ });
  t.match(await checkDaemonDns(file('d.json', '{not json'), '169.254.53.53'), { status: 'warn' });
  t.match(await checkDaemonDns(join(dir, 'missing.json'), '169.254.53.53'), { status: 'warn', detail: /ENOENT/ });
  t.match(await checkDaemonDns(join(dir, 'missing.json'), undefined), { status: 'ok' }, 'resolver off: nothing to check');
});

t.test('plugin socket: 200 ok, 503 fail with the reason, nothing listening fail', async (t) => {
  let status = 200;
  const server = createServer((_req, res) => {
    res.statusCode = status;
    res.end(status === 200 ? '{}' : '{"Err":"cluster store refused: empty"}');
  });
  const socket = join(dir, 'p.sock');
  await new Promise<void>((r) => server.listen(socket, r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  t.match(await checkPluginSocket(socket), { status: 'ok' });
  status = 503;
  t.match(await checkPluginSocket(socket), { status: 'fail', detail: /503.*cluster store refused/ });
  t.match(await checkPluginSocket(join(dir, 'none.sock')), { status: 'fail', fix: /start the plugin/ });
});

const report = (o: Partial<StatusReport>): StatusReport => ({
  node: 'A', vtep: '10.0.0.1', at: '2026-12-05T08:00:00.000Z', nodes: [], networks: [], endpoints: [], devices: [], forwarding: [], kept: [], badRecords: [], converged: true, ...o,
});

t.test('status checks: membership, MTU, device drift', async (t) => {
  const config = loadConfig(['--node-name', 'A'], {});
  const net = { key: 'k', names: ['big'], vni: 4096, subnets: [], layout: 'macvlan', mtu: 1480, internal: false, options: {}, deleted: false, nodes: [{ node: 'A', endpoints: 0 }] };
  const gone = statusChecks(report({ nodes: [{ name: 'A', vtep: '', state: 'gone', self: true }], networks: [net] }), config, 1500, 4);
  t.match(gone.find((c) => c.check === 'membership'), { status: 'fail', fix: /start the plugin/ });
  t.match(gone.find((c) => c.check === 'mtu'), { status: 'fail', detail: /1480 \+ 50 > underlay 1500/, fix: /driver\.mtu=1450/ });
  const moved = statusChecks(report({ nodes: [{ name: 'A', vtep: '10.0.0.9', state: 'alive', self: true }] }), config, 1500, 4);
  t.match(moved.find((c) => c.check === 'membership'), { status: 'fail', detail: /but this host's underlay is 10\.0\.0\.1/ });
  const drift = statusChecks(report({ devices: [{ network: 'n', device: 'tsvx-001000', problem: 'vxlan tsvx-001000 missing' }], converged: false }), config, 1500, 4);
  t.match(drift.find((c) => c.check === 'devices'), { status: 'fail', detail: 'n tsvx-001000: vxlan tsvx-001000 missing', fix: /next full pass \(every 30 s\)/ });
  t.notOk(drift.some((c) => c.check === 'forwarding' && c.status === 'ok'), 'no "all good" line beside a difference');
});

t.test('the VXLAN members chain: sources it lets through', async (t) => {
  const saved = [
    '*raw',
    ':TSOVERLAY-VXLAN - [0:0]',
    '-A PREROUTING -p udp -m udp --dport 4789 -j TSOVERLAY-VXLAN',
    '-A TSOVERLAY-VXLAN -i lo -j RETURN',
    '-A TSOVERLAY-VXLAN -s 172.31.1.1/32 -j RETURN',
    '-A TSOVERLAY-VXLAN -s 172.31.1.2/32 -j RETURN',
    '-A TSOVERLAY-VXLAN -m comment --comment "tsoverlay: VXLAN from a non-member" -j DROP',
    'COMMIT',
  ].join('\n');
  t.same([...(allowedSources(saved, 'TSOVERLAY-VXLAN') ?? [])], ['172.31.1.1', '172.31.1.2']);
  t.equal(allowedSources('*raw\nCOMMIT\n', 'TSOVERLAY-VXLAN'), undefined, 'no chain');
});

t.test('the resolver source filter: an ACCEPT per network here, its subnet from its device, and the jump', async (t) => {
  const nets = [
    { name: 'a', device: 'tsbr-000100', subnets: ['10.61.0.0/24', 'fd61::/64'] },
    { name: 'b', device: 'tsbr-000200', subnets: ['10.62.0.0/24'] },
  ];
  const saved = (...rules: string[]): string => ['*filter', ':TSOVERLAY-DNS - [0:0]', ...rules, 'COMMIT'].join('\n');
  const jump = '-A INPUT -d 169.254.53.53/32 -i tsbr+ -m comment --comment "tsoverlay resolver" -j TSOVERLAY-DNS';
  const drop = '-A TSOVERLAY-DNS -p udp -m udp --dport 53 -m comment --comment "tsoverlay: DNS from another network" -j DROP';
  const a = '-A TSOVERLAY-DNS -s 10.61.0.0/24 -i tsbr-000100 -j ACCEPT';
  const b = '-A TSOVERLAY-DNS -s 10.62.0.0/24 -i tsbr-000200 -j ACCEPT';
  t.match(judgeResolverSources(saved(jump, a, b, drop), 4, nets), { check: 'resolver source filter', status: 'ok', detail: /2 subnet\(s\)/ }, 'IPv4 subnets only for an IPv4 resolver');
  t.match(judgeResolverSources(saved(jump, a, drop), 4, nets), { status: 'fail', detail: /refuses the queries of b \(tsbr-000200 from 10\.62\.0\.0\/24\)/, fix: /resolver source filter/ });
  t.match(judgeResolverSources(saved(a, b, drop), 4, nets), { status: 'fail', detail: /INPUT does not jump to it/ });
  t.match(judgeResolverSources('*filter\nCOMMIT\n', 4, nets), { status: 'fail', detail: /no TSOVERLAY-DNS chain/ });
  t.match(judgeResolverSources('*filter\nCOMMIT\n', 4, []), { status: 'ok', detail: /no network here/ });
});
