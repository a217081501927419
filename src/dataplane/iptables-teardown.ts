/**
 * Reading back and removing tsoverlay's iptables/ip6tables rules and chains,
 * for `tsoverlay cleanup` (iptables-firewall.ts adds them and says why).
 * Ours: a rule whose comment starts with "tsoverlay", a jump into a chain of
 * ours, and the chains named `TSOVERLAY-…` (with the rules in them), in the
 * filter and raw tables.
 */
import type { CommandResult, CommandRunner } from './command.js';
import type { FirewallChain, FirewallRule } from './firewall.js';
import { splitRule } from './iptables-chain.js';

export const OWNED_COMMENT_PREFIX = 'tsoverlay';
export const OWNED_CHAIN_PREFIX = 'TSOVERLAY-';
const COMMANDS = ['iptables', 'ip6tables'] as const;
const TABLES = ['filter', 'raw'] as const;

const isNotFound = (r: CommandResult): boolean => r.code === -1 && /ENOENT/.test(r.stderr);

export interface OwnedIptables {
  rules: FirewallRule[];
  chains: FirewallChain[];
}

/** Every rule and chain of ours; nothing for a command that is not installed. */
export const listOwnedIptables = async (run: CommandRunner): Promise<OwnedIptables> => {
  const out: OwnedIptables = { rules: [], chains: [] };
  for (const command of COMMANDS) {
    for (const table of TABLES) {
      const list = await run(command, ['-w', '5', '-t', table, '-S']);
      if (isNotFound(list)) break;
      if (list.code !== 0) throw new Error(`could not list the ${table} table: ${command}: ${list.stderr.trim()}`);
      for (const line of list.stdout.split('\n')) {
        const words = splitRule(line.trim());
        const chain = words[1] ?? '';
        if (words[0] === '-N' && chain.startsWith(OWNED_CHAIN_PREFIX)) out.chains.push({ command, table, chain });
        if (words[0] !== '-A' || chain === '' || chain.startsWith(OWNED_CHAIN_PREFIX)) continue; // a chain of ours goes whole
        const args = words.slice(2);
        const c = args.indexOf('--comment');
        const commented = c >= 0 && (args[c + 1] ?? '').startsWith(OWNED_COMMENT_PREFIX);
        const j = args.indexOf('-j');
        const jumpsToOurs = j >= 0 && (args[j + 1] ?? '').startsWith(OWNED_CHAIN_PREFIX);
        if (commented || jumpsToOurs) out.rules.push({ command, table, chain, args });
      }
    }
  }
  return out;
};

/** `-D` the rule; false if there is no such rule (or chain). */
export const deleteIptablesRule = async (run: CommandRunner, rule: FirewallRule): Promise<boolean> => {
  const del = await run(rule.command, ['-w', '5', '-t', rule.table, '-D', rule.chain, ...rule.args]);
  if (del.code === 0) return true;
  if (isNotFound(del) || del.code === 1) return false;
  throw new Error(`could not delete a firewall rule: ${rule.command} -t ${rule.table} -D ${rule.chain}: ${del.stderr.trim()}`);
};

/** Flush and delete a chain of ours (jumps into it must be gone first); false if there is none. */
export const deleteIptablesChain = async (run: CommandRunner, c: FirewallChain): Promise<boolean> => {
  if (!c.chain.startsWith(OWNED_CHAIN_PREFIX)) throw new Error(`chain ${c.chain} is not tsoverlay's`);
  const flush = await run(c.command, ['-w', '5', '-t', c.table, '-F', c.chain]);
  if (isNotFound(flush) || flush.code === 1) return false;
  if (flush.code !== 0) throw new Error(`could not flush chain ${c.chain}: ${c.command} -t ${c.table}: ${flush.stderr.trim()}`);
  const del = await run(c.command, ['-w', '5', '-t', c.table, '-X', c.chain]);
  if (del.code !== 0) throw new Error(`could not delete chain ${c.chain}: ${c.command} -t ${c.table}: ${del.stderr.trim()}`);
  return true;
};
