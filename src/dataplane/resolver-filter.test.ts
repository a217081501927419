/** The resolver's source filter chain: rendering, and writing it through a scripted iptables (the contract suite runs the real one). */
import t from 'tap';
import type { CommandResult, CommandRunner } from './command.js';
import { FakeFirewall } from './fake-firewall.js';
import { IptablesFirewall } from './iptables-firewall.js';
import { DNS_CHAIN, DNS_DROP_COMMENT, ensureResolverFilter, legacyResolverAccept, RESOLVER_COMMENT, resolverFilterChain } from './resolver-filter.js';
import { quoteArg } from './iptables-chain.js';

const R = '169.254.53.53';
const A = { subnet: '10.61.0.0/24', device: 'tsbr-000100' };
const B = { subnet: '10.62.0.0/24', device: 'tsbr-000200' };
const drop = (p: string): string => `-A ${DNS_CHAIN} -p ${p} -m ${p} --dport 53 -m comment --comment "${DNS_DROP_COMMENT}" -j DROP`;
const JUMP = `-A INPUT -d ${R}/32 -i tsbr+ -m comment --comment "${RESOLVER_COMMENT}" -j ${DNS_CHAIN}`;
const LEGACY = `-A INPUT ${legacyResolverAccept(R, 4).map(quoteArg).join(' ')}`;
const line = (chain: string, rule: readonly string[]): string => `-A ${chain} ${rule.map(quoteArg).join(' ')}`;

t.test('the chain: an ACCEPT per network (its subnet from its device), sorted, once; then the DROPs; the jump from INPUT', async (t) => {
  const spec = resolverFilterChain(R, 4, [B, A, { ...A }, { subnet: 'fd61::/64', device: 'tsbr-000100' }]);
  t.same(spec.rules.map((r) => line(DNS_CHAIN, r)), [
    `-A ${DNS_CHAIN} -s 10.61.0.0/24 -i tsbr-000100 -j ACCEPT`,
    `-A ${DNS_CHAIN} -s 10.62.0.0/24 -i tsbr-000200 -j ACCEPT`,
    drop('udp'),
    drop('tcp'),
  ], 'the IPv6 subnet is not in the IPv4 chain');
  t.match(spec, { cmd: 'iptables', table: 'filter', chain: DNS_CHAIN, jump: { from: 'INPUT' } });
  t.equal(line('INPUT', [...spec.jump.match, '-j', DNS_CHAIN]), JUMP);
  const v6 = resolverFilterChain('fd53::53', 6, [{ subnet: 'FD61:0::/64', device: 'tsbr-000100' }, A]);
  t.equal(v6.cmd, 'ip6tables');
  t.same(v6.rules[0], ['-s', 'fd61::/64', '-i', 'tsbr-000100', '-j', 'ACCEPT'], 'IPv6: canonical, as ip6tables -S prints it');
  t.equal(v6.rules.length, 3);
});

/** A scripted iptables with INPUT and the chain, as `-S` prints them; records every write. */
const scripted = (input: string[]): { run: CommandRunner; input: string[]; chain: () => string[] | undefined; writes: string[] } => {
  let chain: string[] | undefined;
  const writes: string[] = [];
  const ok = (stdout = ''): CommandResult => ({ code: 0, stdout, stderr: '' });
  const run: CommandRunner = async (cmd, argv, stdin) => {
    if (cmd === 'iptables-restore') {
      writes.push('restore');
      chain = (stdin ?? '').split('\n').filter((l) => l.startsWith(`-A ${DNS_CHAIN} `));
      return ok();
    }
    const [, , , , op, name, ...rest] = argv; // -w 5 -t filter <op> <chain> …
    if (op === '-S' && name === DNS_CHAIN) return chain ? ok([`-N ${DNS_CHAIN}`, ...chain].join('\n')) : { code: 1, stdout: '', stderr: 'No chain/target/match by that name.' };
    if (op === '-S' && name === 'INPUT') return ok(['-P INPUT ACCEPT', ...input].join('\n'));
    if (op === '-I' && name === 'INPUT') {
      writes.push('jump');
      input.splice(Number(rest[0]) - 1, 0, line('INPUT', rest.slice(1)));
      return ok();
    }
    if (op === '-D' && name === 'INPUT') {
      const i = input.indexOf(line('INPUT', rest));
      if (i < 0) return { code: 1, stdout: '', stderr: 'Bad rule (does a matching rule exist in that chain?)' };
      writes.push('delete legacy');
      input.splice(i, 1);
      return ok();
    }
    return { code: 2, stdout: '', stderr: `unexpected ${cmd} ${argv.join(' ')}` };
  };
  return { run, input, chain: () => chain, writes };
};

t.test('written once, then only checked; a changed list rewrites the chain, not the jump', async (t) => {
  const ipt = scripted([`-A INPUT -d ${R}/32 -i lo -m comment --comment "${RESOLVER_COMMENT}" -j ACCEPT`]);
  t.equal(await ensureResolverFilter(ipt.run, R, [A]), true);
  t.same(ipt.writes, ['restore', 'jump']);
  t.equal(ipt.input[0], JUMP, 'the jump at the top of INPUT');
  t.equal(await ensureResolverFilter(ipt.run, R, [A]), false, 'the same list: nothing written');
  t.same(ipt.writes, ['restore', 'jump']);
  t.equal(await ensureResolverFilter(ipt.run, R, [A, B]), true);
  t.same(ipt.writes, ['restore', 'jump', 'restore'], 'one restore for the new list');
  t.equal(ipt.chain()?.length, 4);
  t.equal(ipt.input.filter((l) => l.endsWith(DNS_CHAIN)).length, 1, 'one jump');
});

t.test('upgrade: the unfiltered rule of earlier versions goes after the chain and the jump are in', async (t) => {
  const ipt = scripted([LEGACY, `-A INPUT -d ${R}/32 -m comment --comment "${RESOLVER_COMMENT}" -j DROP`]);
  t.equal(await ensureResolverFilter(ipt.run, R, [A, B]), true);
  t.same(ipt.writes, ['restore', 'jump', 'delete legacy'], 'chain, jump, then the old rule: no query is refused in between');
  t.same(ipt.input, [JUMP, `-A INPUT -d ${R}/32 -m comment --comment "${RESOLVER_COMMENT}" -j DROP`]);
  t.equal(await ensureResolverFilter(ipt.run, R, [A, B]), false, 'converged');
});

t.test('an empty list (or none of the family) is refused and writes nothing', async (t) => {
  const ipt = scripted([LEGACY]);
  await t.rejects(ensureResolverFilter(ipt.run, R, []), /empty resolver source list/);
  await t.rejects(ensureResolverFilter(ipt.run, R, [{ subnet: 'fd61::/64', device: 'tsbr-000100' }]), /empty/);
  t.same(ipt.writes, [], 'the unfiltered rule stays');
  await t.rejects(ensureResolverFilter(ipt.run, 'resolver', [A]), /not an IP address/);
});

t.test('IptablesFirewall: writes it, logs once per write; without iptables-restore it warns once and writes nothing', async (t) => {
  const ipt = scripted([]);
  const said: string[] = [];
  const log = { info: (_o: unknown, m: string) => void said.push(m), warn: (_o: unknown, m: string) => void said.push(m) } as never;
  const fw = new IptablesFirewall(log, ipt.run);
  t.equal(await fw.ensureResolverSources(R, [A]), true);
  t.equal(await fw.ensureResolverSources(R, [A]), false);
  t.same(said, ["resolver source filter written: each network's queries from its own device only"]);
  await t.rejects(fw.ensureResolverSources('x', [A]), { code: 'INVALID_OPTION' });
  const gone = new IptablesFirewall(log, async (cmd) => ({ code: -1, stdout: '', stderr: `spawn ${cmd} ENOENT` }));
  t.equal(await gone.ensureResolverSources(R, [A]), false);
  t.equal(await gone.ensureResolverSources(R, [A]), false);
  t.equal(said.filter((m) => m.includes('not found')).length, 1, 'warned once');
});

t.test('FakeFirewall: chain, jump, the unfiltered rule deleted; writes counted; empty refused; can fail', async (t) => {
  const fw = new FakeFirewall();
  fw.rules.push({ command: 'iptables', table: 'filter', chain: 'INPUT', args: legacyResolverAccept(R, 4) });
  t.equal(await fw.ensureResolverSources(R, [B, A]), true);
  t.same(fw.rules, [{ command: 'iptables', table: 'filter', chain: 'INPUT', args: [...resolverFilterChain(R, 4, []).jump.match, '-j', DNS_CHAIN] }], 'the jump in, the old rule out');
  t.same(fw.chains, [{ command: 'iptables', table: 'filter', chain: DNS_CHAIN }]);
  t.same(fw.resolverSources.get('iptables')?.slice(0, 2), [['-s', '10.61.0.0/24', '-i', 'tsbr-000100', '-j', 'ACCEPT'], ['-s', '10.62.0.0/24', '-i', 'tsbr-000200', '-j', 'ACCEPT']]);
  t.equal(await fw.ensureResolverSources(R, [A, B]), false, 'the same list');
  await t.rejects(fw.ensureResolverSources(R, []), /empty/);
  t.equal(fw.resolverSourceWrites, 1);
  fw.failResolverSources = new Error('nope');
  await t.rejects(fw.ensureResolverSources(R, [A]), { message: 'nope' });
});
