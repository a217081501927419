import t from 'tap';
import { FakeFirewall } from './fake-firewall.js';
import { type CommandResult, type CommandRunner, IptablesFirewall, RESOLVER_COMMENT } from './iptables-firewall.js';
import { silentLog } from '../log.js';

/**
 * A scripted iptables: one INPUT chain per command, rules kept as the
 * argument lists `-S` prints; answers -C, -I [pos], -S like the real one
 * (the contract suite runs the real one in a namespace).
 */
const fakeIptables = (): { run: CommandRunner; chains: Map<string, string[]>; log: string[] } => {
  const chains = new Map<string, string[]>([
    ['iptables', ['-A INPUT -s 10.0.0.0/8 -j ACCEPT']],
    ['ip6tables', []],
  ]);
  const log: string[] = [];
  const show = (args: string[]): string => args.map((a) => (/\s/.test(a) ? `"${a}"` : a)).join(' ');
  const ok = (stdout = ''): CommandResult => ({ code: 0, stdout, stderr: '' });
  const run: CommandRunner = async (cmd, argv) => {
    const chain = chains.get(cmd);
    if (!chain) return { code: -1, stdout: '', stderr: `spawn ${cmd} ENOENT` };
    const args = argv[0] === '-w' ? argv.slice(2) : argv;
    const [op, name, ...rest] = args;
    log.push(`${cmd} ${op} ${name}${op === '-I' && /^\d+$/.test(rest[0] ?? '') ? ` ${rest[0]}` : ''}`);
    if (name !== 'INPUT') return { code: 2, stdout: '', stderr: `no chain ${name}` };
    switch (op) {
      case '-C':
        return chain.includes(`-A INPUT ${show(rest)}`) ? ok() : { code: 1, stdout: '', stderr: 'Bad rule' };
      case '-I': {
        const pos = /^\d+$/.test(rest[0] ?? '') ? Number(rest.shift()) : 1;
        chain.splice(pos - 1, 0, `-A INPUT ${show(rest)}`);
        return ok();
      }
      case '-S':
        return ok(['-P INPUT ACCEPT', ...chain].join('\n') + '\n');
      default:
        return { code: 2, stdout: '', stderr: `unsupported ${String(op)}` };
    }
  };
  return { run, chains, log };
};

const tag = `-m comment --comment "${RESOLVER_COMMENT}"`;
const OURS_V4 = [
  `-A INPUT -d 169.254.53.53/32 -i lo ${tag} -j ACCEPT`,
  `-A INPUT -d 169.254.53.53/32 ${tag} -j DROP`,
];
const JUMP_V4 = `-A INPUT -d 169.254.53.53/32 -i tsbr+ ${tag} -j TSOVERLAY-DNS`;

t.test('resolver input: ACCEPT from lo, then DROP, at the top; idempotent', async (t) => {
  const ipt = fakeIptables();
  const fw = new IptablesFirewall(undefined, ipt.run);
  await fw.ensureResolverInput('169.254.53.53');
  t.same(ipt.chains.get('iptables'), [...OURS_V4, '-A INPUT -s 10.0.0.0/8 -j ACCEPT']);
  const writes = ipt.log.length;
  await fw.ensureResolverInput('169.254.53.53');
  t.same(ipt.log.slice(writes), ['iptables -C INPUT', 'iptables -C INPUT'], 'a replay only checks');
  t.same(ipt.chains.get('ip6tables'), [], 'IPv4 address: iptables only');
});

t.test('resolver input: a rule deleted behind our back comes back in its place', async (t) => {
  const ipt = fakeIptables();
  const fw = new IptablesFirewall(undefined, ipt.run);
  await fw.ensureResolverInput('169.254.53.53');
  const chain = ipt.chains.get('iptables') ?? [];
  chain.splice(1, 1); // the DROP
  chain.unshift('-A INPUT -p icmp -j ACCEPT'); // someone else's rule on top
  await fw.ensureResolverInput('169.254.53.53');
  t.same(chain, ['-A INPUT -p icmp -j ACCEPT', ...OURS_V4, '-A INPUT -s 10.0.0.0/8 -j ACCEPT'], 'DROP right below our ACCEPT');
  chain.splice(1, 1); // the lo ACCEPT
  await fw.ensureResolverInput('169.254.53.53');
  t.same(chain.slice(0, 1), [OURS_V4[0]], 'a missing ACCEPT goes on top, above the DROP');
  t.ok(chain.indexOf(OURS_V4[1] ?? '') > chain.indexOf(OURS_V4[0] ?? ''));
});

t.test('resolver input: a DROP re-added goes below the jump into the source filter too', async (t) => {
  const ipt = fakeIptables();
  const fw = new IptablesFirewall(undefined, ipt.run);
  const chain = ipt.chains.get('iptables') ?? [];
  chain.unshift(JUMP_V4); // the source filter's jump, at the top; lo ACCEPT and DROP missing
  await fw.ensureResolverInput('169.254.53.53');
  t.same(chain, [OURS_V4[0], JUMP_V4, OURS_V4[1], '-A INPUT -s 10.0.0.0/8 -j ACCEPT'], 'no query from a bridge meets the DROP before the chain');
});

t.test('resolver input: IPv6 uses ip6tables, canonical address; bad address; no iptables', async (t) => {
  const ipt = fakeIptables();
  const fw = new IptablesFirewall(undefined, ipt.run);
  await fw.ensureResolverInput('FD53:0::53');
  t.same(ipt.chains.get('ip6tables'), [
    `-A INPUT -d fd53::53/128 -i lo ${tag} -j ACCEPT`,
    `-A INPUT -d fd53::53/128 ${tag} -j DROP`,
  ]);
  await t.rejects(fw.ensureResolverInput('resolver'), { code: 'INVALID_OPTION' });

  const warned: string[] = [];
  const none = new IptablesFirewall({ ...silentLog, warn: (_o, msg) => void warned.push(msg) }, async (cmd) => ({
    code: -1,
    stdout: '',
    stderr: `spawn ${cmd} ENOENT`,
  }));
  await none.ensureResolverInput('169.254.53.53');
  await none.ensureResolverInput('169.254.53.53');
  t.same(warned, ['iptables not found; the resolver address is reachable from outside this node'], 'warned once');
});

t.test('resolver input: a failing insert is an error naming the command', async (t) => {
  const fw = new IptablesFirewall(undefined, async (_cmd, args) =>
    args.includes('-C') ? { code: 1, stdout: '', stderr: 'Bad rule' } : { code: 4, stdout: '', stderr: 'Permission denied (you must be root)\n' },
  );
  await t.rejects(fw.ensureResolverInput('169.254.53.53'), {
    message: 'could not add the firewall rule for the resolver address 169.254.53.53: iptables: Permission denied (you must be root)',
  });
});

t.test('FakeFirewall records resolver addresses and can fail', async (t) => {
  const fw = new FakeFirewall();
  await fw.ensureResolverInput('169.254.53.53');
  t.same(fw.resolverInput, ['169.254.53.53']);
  t.equal(fw.calls, 0, 'bridge forwarding calls counted apart');
  fw.failResolverInput = new Error('nope');
  await t.rejects(fw.ensureResolverInput('169.254.53.53'), { message: 'nope' });
});

/** A scripted iptables with tables and chains (rules as `-S` prints them); -S of a missing chain fails like the real one. */
const tableIptables = (chains: Record<string, string[]>): { run: CommandRunner; chains: Record<string, string[]> } => {
  const show = (args: string[]): string => args.map((a) => (/\s/.test(a) ? `"${a}"` : a)).join(' ');
  const run: CommandRunner = async (cmd, argv) => {
    let args = argv[0] === '-w' ? argv.slice(2) : argv;
    let table = 'filter';
    if (args[0] === '-t') [table, args] = [args[1] as string, args.slice(2)];
    const [op, name, ...rest] = args;
    const chain = chains[`${cmd} ${table} ${name}`];
    if (!chain) return { code: 1, stdout: '', stderr: `${cmd}: No chain/target/match by that name.` };
    const line = `-A ${name} ${show(rest)}`;
    if (op === '-S') return { code: 0, stdout: [`-N ${name}`, ...chain].join('\n') + '\n', stderr: '' };
    if (op === '-C') return chain.includes(line) ? { code: 0, stdout: '', stderr: '' } : { code: 1, stdout: '', stderr: 'Bad rule' };
    if (op === '-I') chain.unshift(line);
    return { code: 0, stdout: '', stderr: '' };
  };
  return { run, chains };
};

const ACCEPT_ARGS = '-i tsbr+ -o tsbr+ -m comment --comment "tsoverlay bridges" -j ACCEPT';

t.test('bridge forwarding: ACCEPT on top of FORWARD and, where dockerd made it, of DOCKER-USER; notrack in raw', async (t) => {
  const ipt = tableIptables({
    'iptables filter FORWARD': ['-A FORWARD -j DOCKER-USER', '-A FORWARD -j DOCKER-ISOLATION-STAGE-1'],
    'iptables filter DOCKER-USER': ['-A DOCKER-USER -j RETURN'],
    'iptables raw PREROUTING': [],
    'ip6tables filter FORWARD': [],
    'ip6tables raw PREROUTING': [],
  });
  const fw = new IptablesFirewall(undefined, ipt.run);
  await fw.ensureBridgeForwarding();
  t.same(ipt.chains['iptables filter DOCKER-USER'], [`-A DOCKER-USER ${ACCEPT_ARGS}`, '-A DOCKER-USER -j RETURN'], 'first in DOCKER-USER');
  t.equal(ipt.chains['iptables filter FORWARD']?.[0], `-A FORWARD ${ACCEPT_ARGS}`, 'and in FORWARD');
  t.equal(ipt.chains['iptables raw PREROUTING']?.length, 1, 'notrack rule');
  t.same(ipt.chains['ip6tables filter FORWARD'], [`-A FORWARD ${ACCEPT_ARGS}`], 'no DOCKER-USER for IPv6: FORWARD only');
  await fw.ensureBridgeForwarding();
  t.equal(ipt.chains['iptables filter DOCKER-USER']?.length, 2, 'a second check adds nothing');
  t.equal(ipt.chains['iptables filter FORWARD']?.length, 3, 'nor to FORWARD');
});

t.test('listOwnedRules/Chains: rules with a "tsoverlay" comment, jumps into TSOVERLAY- chains, those chains; none where iptables is missing', async (t) => {
  const listing: Record<string, string> = {
    'iptables filter': '-P INPUT ACCEPT\n-A INPUT -s 10.0.0.0/8 -j ACCEPT\n-A FORWARD -i tsbr+ -o tsbr+ -m comment --comment "tsoverlay bridges" -j ACCEPT\n-A INPUT -m comment --comment "not tsoverlay" -j ACCEPT\n',
    'iptables raw': '-P PREROUTING ACCEPT\n-N TSOVERLAY-VXLAN\n-A PREROUTING -p udp -m udp --dport 4789 -j TSOVERLAY-VXLAN\n-A TSOVERLAY-VXLAN -i lo -j RETURN\n-A TSOVERLAY-VXLAN -m comment --comment "tsoverlay: VXLAN from a non-member" -j DROP\n',
  };
  const calls: string[] = [];
  const run: CommandRunner = async (cmd, argv) => {
    calls.push(`${cmd} ${argv.join(' ')}`);
    if (cmd === 'ip6tables') return { code: -1, stdout: '', stderr: 'spawn ip6tables ENOENT' };
    if (argv.includes('-S')) return { code: 0, stdout: listing[`${cmd} ${argv[3]}`] ?? '', stderr: '' };
    if (argv.includes('-D')) return argv.includes('ACCEPT') ? { code: 0, stdout: '', stderr: '' } : { code: 1, stdout: '', stderr: 'Bad rule (does a matching rule exist in that chain?)' };
    return { code: 2, stdout: '', stderr: 'unexpected' };
  };
  const fw = new IptablesFirewall(silentLog, run);
  const rules = await fw.listOwnedRules();
  t.same(rules, [
    { command: 'iptables', table: 'filter', chain: 'FORWARD', args: ['-i', 'tsbr+', '-o', 'tsbr+', '-m', 'comment', '--comment', 'tsoverlay bridges', '-j', 'ACCEPT'] },
    { command: 'iptables', table: 'raw', chain: 'PREROUTING', args: ['-p', 'udp', '-m', 'udp', '--dport', '4789', '-j', 'TSOVERLAY-VXLAN'] },
  ], 'not the rules inside the chain of ours: they go with it');
  t.same(await fw.listOwnedChains(), [{ command: 'iptables', table: 'raw', chain: 'TSOVERLAY-VXLAN' }]);
  t.equal(await fw.deleteRule(rules[0]!), true);
  t.ok(calls.includes('iptables -w 5 -t filter -D FORWARD -i tsbr+ -o tsbr+ -m comment --comment tsoverlay bridges -j ACCEPT'), 'deleted with the same words');
  t.equal(await fw.deleteRule({ command: 'iptables', table: 'filter', chain: 'INPUT', args: ['-j', 'DROP'] }), false, 'no such rule: false');
});
