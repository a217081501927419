/**
 * Writing a new cluster network record: choose a free VNI (or take the one
 * asked for) and create the record with this engine's alias, retrying when
 * another network takes the VNI meanwhile, and joining the record when
 * another node created this very network at the same moment.
 */
import { TsoverlayError, isTsoverlayError } from '../errors.js';
import { type NetworkRecord, VNI_MAX, asNetworkId, asVni } from '../model.js';
import type { ClusterState } from '../store/cluster-state.js';

export interface StoreNetworkDeps {
  state: ClusterState;
  node: string;
  /** First VNI tried for automatic allocation. */
  vniStart: number;
  now?: (() => Date) | undefined;
}

export type NetworkContent = Pick<NetworkRecord, 'mtu' | 'internal' | 'ipv4' | 'ipv6' | 'options' | 'multicast' | 'mode'>;

export const storeNetwork = async (
  deps: StoreNetworkDeps,
  key: string,
  engineNetworkId: string,
  fixedVni: number | undefined,
  rest: NetworkContent,
): Promise<NetworkRecord> => {
  const { state, node } = deps;
  for (let attempt = 0; attempt < 10; attempt++) {
    const vni = fixedVni ?? pickVni(await state.usedVnis(), deps.vniStart);
    const rec: NetworkRecord = {
      id: asNetworkId(key),
      vni: asVni(vni),
      aliases: { [engineNetworkId]: node },
      deleted: false,
      ...rest,
      createdBy: node,
      createdAt: (deps.now?.() ?? new Date()).toISOString(),
    };
    try {
      await state.createNetwork(rec, engineNetworkId, node);
      return rec;
    } catch (e) {
      // Another network took the VNI between our read and our write.
      if (isTsoverlayError(e, 'VNI_IN_USE') && fixedVni === undefined) continue;
      // Another node created this very network meanwhile: join it.
      if (isTsoverlayError(e, 'STORE_CONFLICT')) {
        const joined = await state.addAlias(key, engineNetworkId, node);
        if (joined) return joined;
      }
      throw e;
    }
  }
  throw new TsoverlayError('STORE_CONFLICT', 'VNIs kept changing while choosing one; try again');
};

/** The first free VNI from `start` up, then below it. */
export const pickVni = (used: ReadonlySet<number>, start: number): number => {
  for (let v = start; v <= VNI_MAX; v++) if (!used.has(v)) return v;
  for (let v = 1; v < start; v++) if (!used.has(v)) return v;
  throw new TsoverlayError('VNI_EXHAUSTED', 'every VXLAN network identifier is in use; remove unused networks');
};
