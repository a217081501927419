/**
 * What Docker hands the driver, checked and turned into our values once:
 * the IPAM data of a new network (each subnet must come from tsoverlay's
 * IPAM, so it is unique across nodes), an endpoint's addresses, and the
 * device names derived from an endpoint id. Pure; failures are
 * INVALID_REQUEST or NOT_OURS errors Docker can show as they are.
 */
import { poolIdOf } from '../cluster/keys.js';
import { containerIfName, hostIfName } from '../dataplane/names.js';
import { TsoverlayError } from '../errors.js';
import { ADDRESS_SPACES, type NetworkSubnet, asPoolId } from '../model.js';
import { parseCidr, parseIpWithPrefix } from '../net/ip.js';

/** A network's subnets of one family, keyed by their pools in tsoverlay's IPAM. */
export const networkSubnets = (data: ReadonlyArray<{ addressSpace: string; pool: string; gateway?: string }>, family: 4 | 6): NetworkSubnet[] =>
  data.map((d) => {
    const space = ADDRESS_SPACES.find((s) => s === d.addressSpace);
    if (!space) {
      throw new TsoverlayError(
        'NOT_OURS',
        `tsoverlay networks must take their addresses from tsoverlay's IPAM so they stay unique across hosts: add --ipam-driver tsoverlay (got address space "${d.addressSpace}")`,
      );
    }
    const cidr = parseCidr(d.pool);
    if (!cidr || cidr.family !== family) throw new TsoverlayError('INVALID_REQUEST', `"${d.pool}" is not an IPv${family} pool`);
    return { poolId: asPoolId(poolIdOf(space, cidr)), pool: d.pool, ...(d.gateway ? { gateway: d.gateway } : {}) };
  });

/** An endpoint's address of one family in CIDR form; '' (none) gives undefined. */
export const endpointAddress = (text: string, family: 4 | 6): string | undefined => {
  if (text === '') return undefined;
  const a = parseIpWithPrefix(text);
  if (!a || a.ip.family !== family) throw new TsoverlayError('INVALID_REQUEST', `"${text}" is not an IPv${family} address in CIDR form`);
  return text;
};

/** A device name for an endpoint; an id too short for one is Docker's mistake. */
export const endpointDeviceName = (fn: (id: string) => string, endpointId: string): string => {
  try {
    return fn(endpointId);
  } catch (e) {
    throw new TsoverlayError('INVALID_REQUEST', `endpoint id "${endpointId}" is too short`, { cause: e });
  }
};

/** Both device names of an endpoint whose record is gone; none for an id too short for them. */
export const derivedDeviceNames = (endpointId: string): string[] => {
  try {
    return [hostIfName(endpointId), containerIfName(endpointId)];
  } catch {
    return [];
  }
};
