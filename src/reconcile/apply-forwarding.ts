/**
 * The forwarding step of a pass: the remote FDB and neighbour entries on each
 * VXLAN device, after the devices step (a recreated VXLAN device starts
 * empty).
 *
 * Entries are read back from the kernel only when they may differ from what
 * an earlier pass verified (`verified`: device → signature of the entries it
 * wrote): when the store's entries for that device changed, when its device
 * was (re)made, and in a full pass, which also repairs drift made by hand.
 * A full pass reads every device's entries in two dumps for the whole host
 * (by the ifindex it observed), other passes each device on its own; a
 * device created in this pass is not read at all. Then per device its
 * removals in order and its additions in one batch (the dataplane pipelines
 * them); devices side by side. A pass scoped to some networks (partial.ts)
 * looks at their devices alone and leaves every other device's entries, and
 * what is known verified of them, as they are.
 */
import type { FdbEntry, Forwarding, NeighEntry } from '../dataplane/dataplane.js';
import { errorText } from '../errors.js';
import { runAction } from './apply-action.js';
import type { PassIo, PassState } from './pass-state.js';
import { type Action, planForwarding } from './plan.js';

const none = (): Forwarding => ({ fdb: [], neigh: [] });

/** How this pass reads a device's entries: from one host-wide dump in a full pass, else alone. */
const forwardingReader = (io: PassIo, p: PassState): ((vxlan: string) => Promise<Forwarding>) => {
  const indexOf = new Map((p.observed ?? []).map((l) => [l.name, l.index]));
  let all: Promise<Map<number, Forwarding>> | undefined;
  return async (vxlan) => {
    const index = indexOf.get(vxlan);
    if (!p.full || index === undefined) return io.dataplane.listForwarding(vxlan);
    all ??= io.dataplane.listAllForwarding();
    return (await all).get(index) ?? none();
  };
};

/** One device's removals (in order), then its additions (one batch); true if all went in. */
const writeForwarding = async (io: PassIo, p: PassState, vxlan: string, todo: readonly Action[]): Promise<boolean> => {
  let ok = true;
  for (const a of todo) if (a.kind.startsWith('delete')) ok = (await runAction(io, p, a)) && ok;
  const fdb: FdbEntry[] = todo.flatMap((a) => (a.kind === 'addFdb' ? [a.entry] : []));
  const neigh: NeighEntry[] = todo.flatMap((a) => (a.kind === 'addNeigh' ? [a.entry] : []));
  const adds = fdb.length + neigh.length;
  if (adds === 0) return ok;
  try {
    const failures = await io.dataplane.addForwarding(vxlan, { fdb, neigh });
    p.done += adds - failures.length;
    p.failed += failures.length;
    for (const f of failures) {
      io.log.error({ action: f.kind === 'fdb' ? 'addFdb' : 'addNeigh', entry: f.entry, err: f.error, error: errorText(f.error) }, 'reconcile action failed');
    }
    if (adds > failures.length) io.log.debug({ ifname: vxlan, entries: adds - failures.length }, 'forwarding entries programmed');
    return ok && failures.length === 0;
  } catch (e) {
    p.failed += adds;
    io.log.error({ ifname: vxlan, entries: adds, err: e, error: errorText(e) }, 'adding forwarding entries failed');
    return false;
  }
};

/** The devices this pass looks at, with the entries they should hold. */
const devicesOf = (p: PassState): Iterable<[string, Forwarding]> => {
  const { scope, desired } = p;
  if (!scope) return desired.forwarding;
  return [...scope].flatMap((vxlan): Array<[string, Forwarding]> => {
    const want = desired.forwarding.get(vxlan);
    return want ? [[vxlan, want]] : [];
  });
};

export const applyForwarding = async (io: PassIo, p: PassState, verified: Map<string, string>): Promise<void> => {
  if (!p.scope) for (const vxlan of verified.keys()) if (!p.desired.forwarding.has(vxlan)) verified.delete(vxlan);
  const read = forwardingReader(io, p);
  const writes: Array<Promise<void>> = [];
  for (const [vxlan, want] of devicesOf(p)) {
    if (p.broken.has(vxlan)) continue; // already counted; retried next pass
    const signature = JSON.stringify(want);
    if (!p.full && !p.remade.has(vxlan) && verified.get(vxlan) === signature) continue;
    verified.delete(vxlan);
    let have = none();
    if (!p.fresh.has(vxlan)) {
      try {
        have = await read(vxlan);
      } catch (e) {
        p.failed++;
        io.log.error({ ifname: vxlan, err: e }, 'reading forwarding entries failed');
        continue;
      }
    }
    const todo = planForwarding(vxlan, want, have);
    writes.push(
      writeForwarding(io, p, vxlan, todo).then((ok) => {
        if (ok) verified.set(vxlan, signature);
      }),
    );
  }
  await Promise.all(writes);
};
