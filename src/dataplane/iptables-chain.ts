/**
 * A chain of our own, kept whole: its rules are written in one
 * `iptables-restore --noflush` transaction (the chain's declaration flushes
 * it and the rules follow, so no packet ever sees it half written), and only
 * when `-S` shows something else than wanted (so a converged chain keeps its
 * counters). One jump from a built-in chain leads into it, at the top;
 * jumps of ours into it with another match (a changed port) are deleted.
 */
import type { CommandResult, CommandRunner } from './command.js';

export interface OwnedChain {
  cmd: 'iptables' | 'ip6tables';
  table: 'raw' | 'filter';
  chain: string;
  /** Each rule's arguments after `-A <chain>`, in the form `iptables -S` prints them. */
  rules: readonly (readonly string[])[];
  /** The jump into the chain: from this built-in chain, with this match, at position 1. */
  jump: { from: string; match: readonly string[] };
}

/** How `iptables -S` prints an argument: quoted if it has a space. */
export const quoteArg = (a: string): string => (/\s/.test(a) ? `"${a}"` : a);

const ruleLine = (chain: string, rule: readonly string[]): string => `-A ${chain} ${rule.map(quoteArg).join(' ')}`;

const fail = (what: string, spec: OwnedChain, r: CommandResult): Error =>
  new Error(`could not ${what} chain ${spec.chain} (${spec.cmd} -t ${spec.table}): ${r.stderr.trim() || `exit ${r.code}`}`);

/** The restore input that replaces the chain's rules with `spec.rules`. */
export const restoreInput = (spec: OwnedChain): string =>
  [`*${spec.table}`, `:${spec.chain} - [0:0]`, ...spec.rules.map((r) => ruleLine(spec.chain, r)), 'COMMIT', ''].join('\n');

/**
 * Make the chain hold exactly `spec.rules` and the jump lead into it.
 * Resolves true if anything was written. Idempotent.
 */
export const ensureOwnedChain = async (run: CommandRunner, spec: OwnedChain): Promise<boolean> => {
  const { cmd, table, chain } = spec;
  let wrote = false;
  const shown = await run(cmd, ['-w', '5', '-t', table, '-S', chain]);
  const want = spec.rules.map((r) => ruleLine(chain, r));
  const have = shown.code === 0 ? shown.stdout.split('\n').filter((l) => l.startsWith(`-A ${chain} `)) : undefined;
  if (!have || have.join('\n') !== want.join('\n')) {
    const restore = `${cmd}-restore`;
    const r = await run(restore, ['-w', '5', '--noflush'], restoreInput(spec));
    if (r.code !== 0) throw fail('write', spec, r);
    wrote = true;
  }
  const jump = [...spec.jump.match, '-j', chain];
  const listed = await run(cmd, ['-w', '5', '-t', table, '-S', spec.jump.from]);
  if (listed.code !== 0) throw fail('list the jump into', spec, listed);
  const jumps = listed.stdout.split('\n').filter((l) => l.startsWith(`-A ${spec.jump.from} `) && l.endsWith(` -j ${chain}`));
  const wanted = ruleLine(spec.jump.from, jump);
  for (const stale of jumps.filter((l) => l !== wanted)) {
    const args = splitRule(stale).slice(2); // after "-A <from>"
    const d = await run(cmd, ['-w', '5', '-t', table, '-D', spec.jump.from, ...args]);
    if (d.code !== 0) throw fail('delete a stale jump into', spec, d);
    wrote = true;
  }
  if (!jumps.includes(wanted)) {
    const add = await run(cmd, ['-w', '5', '-t', table, '-I', spec.jump.from, '1', ...jump]);
    if (add.code !== 0) throw fail('add the jump into', spec, add);
    wrote = true;
  }
  return wrote;
};

/** Split one `-S` line into arguments (double quotes group). */
export const splitRule = (line: string): string[] => {
  const out: string[] = [];
  for (const m of line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)) out.push(m[1] ?? m[2] ?? '');
  return out;
};
