/**
 * The resolver step of a pass, last: the resolver's address on every bridge
 * (or host macvlan) and its reply routes in its own table. Checked in a full
 * pass, when the desired routing changed, or when a network's devices were
 * ensured (a bridge made again has lost its address) — after the devices
 * exist, since a route's source must be on a device first.
 */
import { errorText } from '../errors.js';
import { runAction } from './apply-action.js';
import { RESOLVER_TABLE } from './desired.js';
import type { PassIo, PassState } from './pass-state.js';
import { planResolver } from './plan.js';

export const resolverStep = async (io: PassIo, p: PassState): Promise<void> => {
  const want = p.desired.resolver;
  const changed = JSON.stringify(p.previous?.resolver) !== JSON.stringify(want);
  if (!want || !(p.full || changed || p.remade.size > 0)) return;
  try {
    // Links as read at the start (a bridge made in this pass has no address
    // yet either); a delta pass reads them now.
    p.observed ??= await io.dataplane.listOwnedLinks();
    const routes = await io.dataplane.listTableRoutes(RESOLVER_TABLE);
    for (const a of planResolver(want, p.observed, routes)) await runAction(io, p, a);
  } catch (e) {
    p.failed++;
    io.log.error({ err: e, error: errorText(e) }, 'reading resolver routing failed');
  }
  p.lap('resolver');
};
