/**
 * Applying planned actions to the kernel, one at a time: each is counted in
 * the pass, logged (a repaired device as drift, an entry at debug level) and,
 * if it fails, logged and counted without stopping the pass. The devices step
 * of a pass is the device actions in plan order.
 */
import type { Dataplane } from '../dataplane/dataplane.js';
import { errorText } from '../errors.js';
import { RESOLVER_TABLE } from './desired.js';
import type { PassIo, PassState } from './pass-state.js';
import type { Action } from './plan.js';

const FORWARDING_KINDS = new Set<Action['kind']>(['addFdb', 'deleteFdb', 'addNeigh', 'deleteNeigh', 'addBridgeAddress', 'addTableRoute', 'deleteTableRoute']);

/**
 * The kernel's answer when the device an action names no longer exists (the
 * dataplane says "no such bridge" for the resolver's address on a bridge
 * that is gone).
 */
const deviceWentAway = (e: unknown): boolean => /no such device|no such bridge|ENODEV/.test(errorText(e));

/** Apply one action; true only for an ensureNetwork that created the VXLAN device. */
export const applyAction = async (dp: Dataplane, a: Action): Promise<boolean> => {
  switch (a.kind) {
    case 'ensureNetwork':
      return dp.ensureNetwork(a.spec);
    case 'ensureEndpoint':
      await dp.ensureEndpoint(a.spec);
      return false;
    case 'deleteLink':
      await dp.deleteLink(a.name);
      return false;
    case 'addFdb':
      await dp.addFdb(a.vxlan, a.entry);
      return false;
    case 'deleteFdb':
      await dp.deleteFdb(a.vxlan, a.entry);
      return false;
    case 'addNeigh':
      await dp.addNeigh(a.vxlan, a.entry);
      return false;
    case 'deleteNeigh':
      await dp.deleteNeigh(a.vxlan, a.entry);
      return false;
    case 'addBridgeAddress':
      await dp.ensureBridgeAddress(a.bridge, a.address);
      return false;
    case 'addTableRoute':
      await dp.ensureTableRoute(RESOLVER_TABLE, a.route);
      return false;
    case 'deleteTableRoute':
      await dp.deleteTableRoute(RESOLVER_TABLE, a.route);
      return false;
    default: {
      const never: never = a;
      throw new Error(`unknown action ${JSON.stringify(never)}`);
    }
  }
};

/**
 * Apply one action within a pass; false if it failed. A VXLAN device it
 * ensures is marked remade (its entries get read back), created (nothing to
 * read back) or broken (its entries wait for the next pass).
 */
export const runAction = async (io: PassIo, p: PassState, a: Action): Promise<boolean> => {
  try {
    if (a.kind === 'ensureNetwork') p.remade.add(a.spec.vxlan);
    const created = await applyAction(io.dataplane, a);
    if (created && a.kind === 'ensureNetwork') p.fresh.add(a.spec.vxlan);
    p.done++;
    const fields = { action: a.kind, reason: a.reason, ...('name' in a ? { ifname: a.name } : {}), ...('entry' in a ? { entry: a.entry } : {}) };
    if (FORWARDING_KINDS.has(a.kind)) io.log.debug(fields, 'forwarding entry programmed');
    else io.log.warn(fields, 'repaired drift');
    return true;
  } catch (e) {
    p.failed++;
    if (a.kind === 'ensureNetwork') p.broken.add(a.spec.vxlan);
    if (a.kind !== 'ensureNetwork' && deviceWentAway(e)) {
      // A device this pass planned for was deleted meanwhile (a network
      // removed through Docker while the pass ran, or by hand): the failure
      // makes the next pass a full one, which decides from the store again.
      io.log.info({ action: a.kind, reason: a.reason, error: errorText(e) }, 'reconcile: a device went away during the pass; the next pass decides');
      return false;
    }
    io.log.error({ action: a.kind, reason: a.reason, err: e, error: errorText(e) }, 'reconcile action failed');
    return false;
  }
};

/** The devices step: networks, endpoints and orphans, in plan order, one after another. */
export const applyDevices = async (io: PassIo, p: PassState, actions: readonly Action[]): Promise<void> => {
  for (const a of actions) await runAction(io, p, a);
};
