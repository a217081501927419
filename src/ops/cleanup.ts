/**
 * `tsoverlay cleanup`: find everything tsoverlay put on this node, and remove
 * it on an explicit operator decision (the command's --yes). What counts as
 * ours, and nothing else:
 * - devices named as names.ts names them (`tsbr-<vni>`, `tsvx-<vni>`,
 *   `tsh<id>`, `tsc<id>`); other devices starting with "ts" are left alone;
 * - the resolver's policy rules (`from <address> lookup 5353`), the routes of
 *   table 5353 through our devices, and the resolver address on `lo` (the
 *   configured one, or the source of one of those rules);
 * - iptables/ip6tables rules whose comment starts with "tsoverlay", the jumps
 *   into its chains, and its chains (`TSOVERLAY-…`, e.g. the VXLAN member
 *   filter in the raw table);
 * - its state files: the embedded store (`--store file://…`), the session
 *   file and its saved records, the cluster-id file, their temporary files,
 *   the plugin socket; then their directories if that leaves them empty.
 * The cluster store in ZooKeeper and Docker's own networks are not touched.
 */
import { lstat, readdir, rmdir, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Config } from '../config.js';
import type { Dataplane, ObservedLink } from '../dataplane/dataplane.js';
import { type Firewall, formatRule } from '../dataplane/firewall.js';
import { parseOwnedName } from '../dataplane/names.js';
import { canonicalIp } from '../dataplane/netlink/addr.js';
import { RESOLVER_TABLE } from '../reconcile/desired.js';
import { snapshotPath } from '../store/session-file.js';

/**
 * One thing to remove: how the dry run shows it, and how to remove it
 * (true: removed; false: already gone; a string: kept, and why).
 */
export interface CleanupItem {
  what: string;
  remove(): Promise<boolean | string>;
}

export interface CleanupPlan {
  items: CleanupItem[];
  /** Things that look like ours but are left alone, and why. */
  leftAlone: string[];
}

export interface CleanupOutcome {
  removed: string[];
  /** Already gone when their turn came. */
  gone: string[];
  /** Kept, with the reason (a directory that still holds other files). */
  kept: string[];
  failed: { what: string; error: string }[];
}

export type CleanupConfig = Pick<Config, 'socket' | 'store' | 'sessionFile' | 'clusterIdFile' | 'dnsAddress'>;

/** Endpoint devices first, then the networks' host devices, then the VXLAN devices. */
const linkOrder = (l: ObservedLink): number => {
  const kind = parseOwnedName(l.name)?.kind;
  return kind === 'host' || kind === 'container' ? 0 : kind === 'bridge' ? 1 : 2;
};

const exists = async (path: string): Promise<boolean> => {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
};

const removeFile = async (path: string): Promise<boolean> => {
  try {
    await unlink(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
};

/** The state files of this configuration that exist, in removal order. */
const stateFiles = async (config: CleanupConfig): Promise<string[]> => {
  const candidates: string[] = [];
  if (config.store.kind === 'file') {
    const f = config.store.path;
    candidates.push(f, join(dirname(f), `.${basename(f)}.tmp`));
  }
  const records = snapshotPath(config.sessionFile);
  candidates.push(config.sessionFile, `${config.sessionFile}.tmp`, records, `${records}.tmp`, config.clusterIdFile);
  // the cluster-id file's temporary files carry the writer's pid
  const idDir = dirname(config.clusterIdFile);
  const idTmp = `${basename(config.clusterIdFile)}.tmp-`;
  const inIdDir = await readdir(idDir).catch(() => [] as string[]);
  candidates.push(...inIdDir.filter((n) => n.startsWith(idTmp)).map((n) => join(idDir, n)));
  candidates.push(config.socket);
  const out: string[] = [];
  for (const c of [...new Set(candidates)]) if (await exists(c)) out.push(c);
  return out;
};

/** What cleanup would remove on this node (reads only). */
export const planCleanup = async (dp: Dataplane, fw: Firewall, config: CleanupConfig): Promise<CleanupPlan> => {
  const items: CleanupItem[] = [];
  const leftAlone: string[] = [];

  // routes of the resolver's table first (they would go with their devices anyway)
  for (const r of await dp.listTableRoutes(RESOLVER_TABLE)) {
    if (!parseOwnedName(r.dev)) {
      leftAlone.push(`route ${r.dst} dev ${r.dev} table ${RESOLVER_TABLE}: not through a tsoverlay device`);
      continue;
    }
    items.push({ what: `route ${r.dst} dev ${r.dev} table ${RESOLVER_TABLE}`, remove: () => dp.deleteTableRoute(RESOLVER_TABLE, r) });
  }
  const links = [...(await dp.listOwnedLinks())].sort((a, b) => linkOrder(a) - linkOrder(b) || (a.name < b.name ? -1 : 1));
  for (const l of links) {
    if (!parseOwnedName(l.name)) {
      leftAlone.push(`device ${l.name}: its name is not one tsoverlay gives`);
      continue;
    }
    items.push({ what: `device ${l.name} (${l.kind || 'unknown kind'})`, remove: () => dp.deleteLink(l.name) });
  }
  const rules = await dp.listSourceRules(RESOLVER_TABLE);
  for (const r of rules) {
    items.push({ what: `policy rule from ${r.source} lookup ${r.table} priority ${r.priority}`, remove: () => dp.deleteSourceRule(r) });
  }
  const configured = config.dnsAddress === undefined ? undefined : canonicalIp(config.dnsAddress)?.address;
  const resolverAddresses = new Set([...rules.map((r) => r.source), ...(configured === undefined ? [] : [configured])]);
  for (const a of await dp.listLocalAddresses()) {
    if (resolverAddresses.has(a)) items.push({ what: `address ${a} on lo`, remove: () => dp.deleteLocalAddress(a) });
  }
  for (const r of await fw.listOwnedRules()) items.push({ what: `firewall rule ${formatRule(r)}`, remove: () => fw.deleteRule(r) });
  // after the rules, which include the jumps into them
  for (const c of await fw.listOwnedChains()) {
    items.push({ what: `firewall chain ${c.chain} (${c.command} -t ${c.table})`, remove: () => fw.deleteChain(c) });
  }

  const files = await stateFiles(config);
  for (const f of files) items.push({ what: `file ${f}`, remove: () => removeFile(f) });
  const dirs = [...new Set(files.filter((f) => f !== config.socket).map((f) => dirname(f)))];
  for (const d of dirs) {
    items.push({
      what: `directory ${d} (if empty then)`,
      remove: async () => {
        if (!(await exists(d))) return false;
        const left = await readdir(d);
        if (left.length > 0) return `it still holds ${left.slice(0, 3).join(', ')}${left.length > 3 ? ', …' : ''}`;
        await rmdir(d);
        return true;
      },
    });
  }
  return { items, leftAlone };
};

/** Remove every item in order; a failure is recorded and the rest still go. */
export const applyCleanup = async (plan: CleanupPlan): Promise<CleanupOutcome> => {
  const out: CleanupOutcome = { removed: [], gone: [], kept: [], failed: [] };
  for (const item of plan.items) {
    try {
      const done = await item.remove();
      if (done === true) out.removed.push(item.what);
      else if (done === false) out.gone.push(item.what);
      else out.kept.push(`${item.what}: ${done}`);
    } catch (e) {
      out.failed.push({ what: item.what, error: e instanceof Error ? e.message : String(e) });
    }
  }
  return out;
};
