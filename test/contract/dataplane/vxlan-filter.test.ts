/**
 * The VXLAN member filter (`Firewall.ensureVxlanMembers`): the same contract
 * against FakeFirewall (always) and IptablesFirewall (TSOVERLAY_IT=1, real
 * iptables in a throw-away "host" namespace, through `ip netns exec`). On the
 * real kernel, a UDP echo server on the VXLAN port in the host is asked
 * from a neighbour namespace on the underlay with two source addresses: a
 * member's is answered, a non-member's is dropped (and counted by the
 * chain's DROP rule).
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import t, { type Test } from 'tap';
import { runCommand } from '../../../src/dataplane/command.js';
import { FakeFirewall } from '../../../src/dataplane/fake-firewall.js';
import type { Firewall } from '../../../src/dataplane/firewall.js';
import { IptablesFirewall, VXLAN_CHAIN, VXLAN_DROP_COMMENT } from '../../../src/dataplane/iptables-firewall.js';
import { ip, realKernelOptions } from './harness.js';

const HOST_IP = '192.168.78.1';
const MEMBER = '192.168.78.2';
const STRANGER = '192.168.78.3';

/** The contract both adapters keep; `kernel` adds the checks only a real one can answer. */
const contract = async (t: Test, fw: Firewall, kernel?: KernelView): Promise<void> => {
  await t.test('members only, written once', async (t) => {
    t.equal(await fw.ensureVxlanMembers(4789, [MEMBER, HOST_IP]), true, 'written');
    t.equal(await fw.ensureVxlanMembers(4789, [HOST_IP, MEMBER]), false, 'the same members again: nothing written');
    if (!kernel) return;
    t.same(kernel.chain(), [
      `-A ${VXLAN_CHAIN} -i lo -j RETURN`,
      `-A ${VXLAN_CHAIN} -s ${HOST_IP}/32 -j RETURN`,
      `-A ${VXLAN_CHAIN} -s ${MEMBER}/32 -j RETURN`,
      `-A ${VXLAN_CHAIN} -m comment --comment "${VXLAN_DROP_COMMENT}" -j DROP`,
    ]);
    t.same(kernel.jumps(), [`-A PREROUTING -p udp -m udp --dport 4789 -j ${VXLAN_CHAIN}`], 'one jump, at the top');
    t.match(await kernel.ask(MEMBER, 4789), { reply: `${MEMBER} said hello` }, 'a member is answered');
    const before = kernel.dropped();
    t.same(await kernel.ask(STRANGER, 4789, 1200), {}, 'a non-member gets nothing');
    t.ok(kernel.dropped() > before, `the DROP rule counted it (${before} -> ${kernel.dropped()})`);
  });

  await t.test('the list is replaced whole: a joined member in, a lost one out', async (t) => {
    t.equal(await fw.ensureVxlanMembers(4789, [HOST_IP, STRANGER]), true);
    if (!kernel) return;
    t.match(await kernel.ask(STRANGER, 4789), { reply: `${STRANGER} said hello` }, 'the new member is answered');
    t.same(await kernel.ask(MEMBER, 4789, 1200), {}, 'the lost one is not');
  });

  await t.test('an empty list is refused and changes nothing', async (t) => {
    await t.rejects(fw.ensureVxlanMembers(4789, []), /empty/);
    t.equal(await fw.ensureVxlanMembers(4789, [HOST_IP, STRANGER]), false, 'the filter as it was');
  });

  await t.test('another port: the jump moves, the old port is open again', async (t) => {
    t.equal(await fw.ensureVxlanMembers(4790, [HOST_IP, STRANGER]), true);
    if (!kernel) return;
    t.same(kernel.jumps(), [`-A PREROUTING -p udp -m udp --dport 4790 -j ${VXLAN_CHAIN}`], 'one jump, for the new port');
    t.match(await kernel.ask(MEMBER, 4789), { reply: `${MEMBER} said hello` }, 'the old port filters nothing any more');
  });
};

t.test('FakeFirewall', (t) => contract(t, new FakeFirewall()));

interface KernelView {
  chain(): string[];
  jumps(): string[];
  dropped(): number;
  ask(from: string, port: number, ms?: number): Promise<{ reply?: string }>;
}

const ECHO = `
const s = require('node:dgram').createSocket('udp4');
s.on('message', (m, r) => s.send(r.address + ' said ' + m, r.port, r.address));
s.bind(Number(process.argv[2]), process.argv[1], () => console.log('ready'));
`;
const ASK = `
const [to, port, from, ms] = process.argv.slice(1);
const s = require('node:dgram').createSocket('udp4');
const done = (o) => { console.log(JSON.stringify(o)); process.exit(0); };
s.on('message', (m) => done({ reply: String(m) }));
s.bind(0, from, () => { const send = () => s.send('hello', Number(port), to); send(); setInterval(send, 200); });
setTimeout(() => done({}), Number(ms));
`;

t.test('IptablesFirewall, real iptables in a namespace', realKernelOptions(), async (t) => {
  const id = randomBytes(3).toString('hex');
  const HOST = `tsvf-${id}-h`;
  const OUT = `tsvf-${id}-o`;
  const procs: ChildProcess[] = [];
  t.teardown(() => {
    for (const p of procs) if (p.exitCode === null) p.kill();
    for (const n of [HOST, OUT]) if (existsSync(`/run/netns/${n}`)) ip('netns', 'del', n);
  });
  for (const n of [HOST, OUT]) {
    ip('netns', 'add', n);
    ip('-n', n, 'link', 'set', 'lo', 'up');
  }
  ip('-n', HOST, 'link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', 'ul0', 'netns', OUT);
  ip('-n', HOST, 'addr', 'add', `${HOST_IP}/24`, 'dev', 'ul0');
  ip('-n', OUT, 'addr', 'add', `${MEMBER}/24`, 'dev', 'ul0');
  ip('-n', OUT, 'addr', 'add', `${STRANGER}/24`, 'dev', 'ul0');
  for (const n of [HOST, OUT]) ip('-n', n, 'link', 'set', 'ul0', 'up');
  for (const port of [4789, 4790]) {
    const echo = spawn('ip', ['netns', 'exec', HOST, process.execPath, '-e', ECHO, HOST_IP, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
    procs.push(echo);
    await new Promise<void>((resolve) => createInterface({ input: echo.stdout! }).once('line', () => resolve()));
  }
  const inHost = (...args: string[]): string => execFileSync('ip', ['netns', 'exec', HOST, ...args], { encoding: 'utf8' });
  const kernel: KernelView = {
    chain: () => inHost('iptables', '-t', 'raw', '-S', VXLAN_CHAIN).split('\n').filter((l) => l.startsWith('-A')),
    jumps: () => inHost('iptables', '-t', 'raw', '-S', 'PREROUTING').split('\n').filter((l) => l.endsWith(`-j ${VXLAN_CHAIN}`)),
    dropped: () => {
      const line = inHost('iptables', '-t', 'raw', '-L', VXLAN_CHAIN, '-v', '-x', '-n').split('\n').find((l) => l.includes('DROP'));
      return Number(line?.trim().split(/\s+/)[0] ?? NaN);
    },
    ask: (from, port, ms = 5000) =>
      new Promise((resolve, reject) => {
        execFile('ip', ['netns', 'exec', OUT, process.execPath, '-e', ASK, HOST_IP, String(port), from, String(ms)], { timeout: ms + 10_000 }, (err, stdout) =>
          err ? reject(err) : resolve(JSON.parse(stdout) as { reply?: string }),
        );
      }),
  };
  t.match(await kernel.ask(STRANGER, 4789), { reply: `${STRANGER} said hello` }, 'without the filter anyone reaches the port');
  const fw = new IptablesFirewall(undefined, (cmd, args, input) => runCommand('ip', ['netns', 'exec', HOST, cmd, ...args], input));
  await contract(t, fw, kernel);
});
