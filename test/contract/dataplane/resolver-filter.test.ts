/**
 * The resolver's source filter (`Firewall.ensureResolverSources`): the same
 * contract against FakeFirewall (always) and IptablesFirewall (TSOVERLAY_IT=1,
 * real iptables in a throw-away "host" namespace, through `ip netns exec`).
 * On the real kernel the host has two networks, each a device named like
 * a network's host device (tsbr-…) with the resolver address R on it and a
 * "container" namespace behind it; a UDP server on R:53 in the host notes
 * every query's source. A container's query from its own network's address
 * is answered; one from an address of the other network is not heard (and
 * is counted by the chain's UDP DROP) once the filter is there, and was
 * heard before it.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import t, { type Test } from 'tap';
import { runCommand } from '../../../src/dataplane/command.js';
import { FakeFirewall } from '../../../src/dataplane/fake-firewall.js';
import { type Firewall, formatRule } from '../../../src/dataplane/firewall.js';
import { IptablesFirewall } from '../../../src/dataplane/iptables-firewall.js';
import { DNS_CHAIN, DNS_DROP_COMMENT, legacyResolverAccept, RESOLVER_COMMENT } from '../../../src/dataplane/resolver-filter.js';
import { ip, R, realKernelOptions } from './harness.js';

const DEV_A = 'tsbr-00f0a1';
const DEV_B = 'tsbr-00f0b1';
const A = { subnet: '10.61.0.0/24', device: DEV_A };
const B = { subnet: '10.62.0.0/24', device: DEV_B };
const IP_A = '10.61.0.2';
const IP_B = '10.62.0.2';
/** An address of network B that container A forges. */
const FORGED_B = '10.62.0.9';
const JUMP = `-A INPUT -d ${R}/32 -i tsbr+ -m comment --comment "${RESOLVER_COMMENT}" -j ${DNS_CHAIN}`;
const LEGACY = { command: 'iptables' as const, table: 'filter' as const, chain: 'INPUT', args: legacyResolverAccept(R, 4) };

interface KernelView {
  chain(): string[];
  input(): string[];
  dropped(): number;
  /** Queries of `from` (in container `ctr`) to R:53 for `ms`: the reply, if any, and how many the server heard. */
  ask(ctr: 'a' | 'b', from: string, ms?: number): Promise<{ reply?: string; heard: number }>;
}

/** The contract both adapters keep; `kernel` adds the checks only a real one can answer. */
const contract = async (t: Test, fw: Firewall, seedLegacy: () => Promise<void>, kernel?: KernelView): Promise<void> => {
  await t.test('upgrade: chain and jump in, then the unfiltered rule of earlier versions out', async (t) => {
    await seedLegacy();
    t.ok((await fw.listOwnedRules()).some((r) => formatRule(r) === formatRule(LEGACY)), 'the old rule is there');
    if (kernel) t.match(await kernel.ask('a', FORGED_B), { heard: 6 }, 'with it, a forged source of another network is heard');
    t.equal(await fw.ensureResolverSources(R, [A, B]), true, 'written');
    t.equal(await fw.ensureResolverSources(R, [B, A]), false, 'the same networks again: nothing written');
    const rules = (await fw.listOwnedRules()).map(formatRule);
    t.notOk(rules.includes(formatRule(LEGACY)), 'the old rule is gone');
    t.ok(rules.includes(`iptables -t filter ${JUMP}`), 'the jump is listed as ours (cleanup finds it)');
    t.same(await fw.listOwnedChains(), [{ command: 'iptables', table: 'filter', chain: DNS_CHAIN }], 'and the chain');
    if (!kernel) return;
    t.same(kernel.chain(), [
      `-A ${DNS_CHAIN} -s ${A.subnet} -i ${DEV_A} -j ACCEPT`,
      `-A ${DNS_CHAIN} -s ${B.subnet} -i ${DEV_B} -j ACCEPT`,
      `-A ${DNS_CHAIN} -p udp -m udp --dport 53 -m comment --comment "${DNS_DROP_COMMENT}" -j DROP`,
      `-A ${DNS_CHAIN} -p tcp -m tcp --dport 53 -m comment --comment "${DNS_DROP_COMMENT}" -j DROP`,
    ]);
    t.equal(kernel.input()[0], JUMP, 'the jump first in INPUT');
  });

  await t.test('each network from its own device only', { skip: kernel ? false : 'kernel only' }, async (t) => {
    if (!kernel) return;
    t.match(await kernel.ask('a', IP_A), { reply: `${IP_A} said hello` }, 'A from its own address is answered');
    t.match(await kernel.ask('b', IP_B), { reply: `${IP_B} said hello` }, 'B too');
    const before = kernel.dropped();
    const forged = await kernel.ask('a', FORGED_B);
    t.same(forged, { heard: 0 }, 'A forging an address of B: not heard, no answer');
    const after = kernel.dropped();
    t.ok(after >= before + 6, `the chain's UDP DROP counted them (${before} -> ${after})`);
    t.comment(`forged from A as ${FORGED_B}: ${forged.heard} heard; DROP counter ${before} -> ${after}`);
  });

  await t.test('the list is replaced whole: a network gone from it is refused', async (t) => {
    t.equal(await fw.ensureResolverSources(R, [A]), true);
    if (!kernel) return;
    t.match(await kernel.ask('a', IP_A), { reply: `${IP_A} said hello` }, 'A still answered');
    t.same(await kernel.ask('b', IP_B), { heard: 0 }, 'B not heard any more');
  });

  await t.test('an empty list is refused and changes nothing', async (t) => {
    await t.rejects(fw.ensureResolverSources(R, []), /empty/);
    t.equal(await fw.ensureResolverSources(R, [A]), false, 'the filter as it was');
  });

  await t.test('cleanup takes the jump, then the chain', async (t) => {
    const jump = (await fw.listOwnedRules()).find((r) => r.args.at(-1) === DNS_CHAIN);
    if (!jump) throw new Error('no jump');
    const [chain] = await fw.listOwnedChains();
    if (!chain) throw new Error('no chain');
    await t.rejects(fw.deleteChain(chain), 'not while jumped to');
    t.equal(await fw.deleteRule(jump), true);
    t.equal(await fw.deleteChain(chain), true);
    t.same(await fw.listOwnedChains(), []);
    t.same((await fw.listOwnedRules()).filter((r) => r.args.includes(R + '/32') && r.args.includes('tsbr+')), [], 'nothing of the filter left');
  });
};

t.test('FakeFirewall', async (t) => {
  const fw = new FakeFirewall();
  await contract(t, fw, async () => void fw.rules.push({ ...LEGACY, args: [...LEGACY.args] }));
});

/** UDP server on R:53: answers "<source> said <payload>" and prints "heard <source>" for each query; "ready" once bound. */
const SERVER = `
const s = require('node:dgram').createSocket('udp4');
s.on('error', () => undefined); // a reply toward an address nobody has
s.on('message', (m, r) => { console.log('heard ' + r.address); s.send(r.address + ' said ' + m, r.port, r.address); });
s.bind(53, process.argv[1], () => console.log('ready'));
`;
/** UDP client: from <from>, to R:53 every 200 ms, 6 times; prints {reply} at the first answer, or {} after <ms>. */
const ASK = `
const [to, from, ms] = process.argv.slice(1);
const s = require('node:dgram').createSocket('udp4');
const done = (o) => { console.log(JSON.stringify(o)); process.exit(0); };
s.on('message', (m) => done({ reply: String(m) }));
s.bind(0, from, () => { let n = 0; const send = () => { if (n++ < 6) s.send('hello', 53, to); }; send(); setInterval(send, 200); });
setTimeout(() => done({}), Number(ms));
`;

t.test('IptablesFirewall, real iptables in a namespace', realKernelOptions(), async (t) => {
  const id = randomBytes(3).toString('hex');
  const HOST = `tsrf-${id}-h`;
  const CTR = { a: `tsrf-${id}-a`, b: `tsrf-${id}-b` };
  const procs: ChildProcess[] = [];
  t.teardown(() => {
    for (const p of procs) if (p.exitCode === null) p.kill();
    for (const n of [HOST, CTR.a, CTR.b]) if (existsSync(`/run/netns/${n}`)) ip('netns', 'del', n);
  });
  for (const n of [HOST, CTR.a, CTR.b]) {
    ip('netns', 'add', n);
    ip('-n', n, 'link', 'set', 'lo', 'up');
  }
  for (const [ns, dev, addr, subnet] of [[CTR.a, DEV_A, IP_A, A.subnet], [CTR.b, DEV_B, IP_B, B.subnet]] as const) {
    ip('-n', HOST, 'link', 'add', dev, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    ip('-n', HOST, 'addr', 'add', `${R}/32`, 'dev', dev);
    ip('-n', HOST, 'link', 'set', dev, 'up');
    ip('-n', HOST, 'route', 'add', subnet, 'dev', dev, 'src', R);
    ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0');
    ip('-n', ns, 'link', 'set', 'eth0', 'up');
    ip('-n', ns, 'route', 'add', `${R}/32`, 'dev', 'eth0');
  }
  ip('-n', CTR.a, 'addr', 'add', `${FORGED_B}/32`, 'dev', 'eth0'); // so container A can send from it
  const heard: string[] = [];
  const server = spawn('ip', ['netns', 'exec', HOST, process.execPath, '-e', SERVER, R], { stdio: ['ignore', 'pipe', 'inherit'] });
  procs.push(server);
  await new Promise<void>((resolve) =>
    createInterface({ input: server.stdout! }).on('line', (l) => (l === 'ready' ? resolve() : void heard.push(l.replace(/^heard /, '')))),
  );
  const inHost = (...args: string[]): string => execFileSync('ip', ['netns', 'exec', HOST, ...args], { encoding: 'utf8' });
  const kernel: KernelView = {
    chain: () => inHost('iptables', '-S', DNS_CHAIN).split('\n').filter((l) => l.startsWith('-A')),
    input: () => inHost('iptables', '-S', 'INPUT').split('\n').filter((l) => l.startsWith('-A')),
    dropped: () => {
      const line = inHost('iptables', '-L', DNS_CHAIN, '-v', '-x', '-n').split('\n').find((l) => /\bDROP\b.*\budp dpt:53\b/.test(l));
      return Number(line?.trim().split(/\s+/)[0] ?? NaN);
    },
    ask: (ctr, from, ms = 1600) =>
      new Promise((resolve, reject) => {
        const before = heard.filter((h) => h === from).length;
        execFile('ip', ['netns', 'exec', CTR[ctr], process.execPath, '-e', ASK, R, from, String(ms)], { timeout: ms + 10_000 }, (err, stdout) => {
          if (err) return reject(err);
          // the server's lines for these queries are read before the asker's answer comes back, or not at all
          setImmediate(() => resolve({ ...(JSON.parse(stdout) as { reply?: string }), heard: heard.filter((h) => h === from).length - before }));
        });
      }),
  };
  const fw = new IptablesFirewall(undefined, (cmd, args, input) => runCommand('ip', ['netns', 'exec', HOST, cmd, ...args], input));
  await fw.ensureResolverInput(R); // lo ACCEPT and the DROP, as a node has them
  const seedLegacy = async (): Promise<void> => void inHost('iptables', '-I', 'INPUT', '1', ...LEGACY.args);
  await contract(t, fw, seedLegacy, kernel);
});
