/**
 * Parse and check what `docker network create` hands the driver. Pure: a
 * rejected request is refused here, before anything changes.
 */
import { TsoverlayError } from '../errors.js';
import { vxlanOverhead } from '../dataplane/vxlan-mtu.js';
import { formatIp, parseIp } from '../net/ip.js';
import { NETWORK_MODES, type NetworkMode, VNI_MAX, VNI_MIN } from '../model.js';

export const MTU_KEY = 'com.docker.network.driver.mtu';
export const VNI_KEY = 'tsoverlay.vni';
export const MULTICAST_KEY = 'tsoverlay.multicast';
export const MODE_KEY = 'tsoverlay.mode';
export const SUPPORTED_OPTIONS = [MTU_KEY, VNI_KEY, MULTICAST_KEY, MODE_KEY] as const;

const MIN_MTU = 68;
const MIN_MTU_IPV6 = 1280;

export interface NetworkOptions {
  generic: Record<string, string>;
  mtu?: number;
  vni?: number;
  multicast?: string;
  /** `tsoverlay.mode`, if given (else the node's --default-mode). */
  mode?: NetworkMode;
  internal: boolean;
  ipv6: boolean;
}

const parseIntStrict = (text: string): number | undefined => (/^\d{1,9}$/.test(text) ? Number(text) : undefined);

/** Docker's CreateNetwork `Options` object → checked options; collects every problem. */
export const parseNetworkOptions = (options: Record<string, unknown> | undefined): NetworkOptions => {
  const problems: string[] = [];
  const rawGeneric = options?.['com.docker.network.generic'];
  const generic: Record<string, string> = {};
  if (rawGeneric !== undefined && rawGeneric !== null) {
    if (typeof rawGeneric !== 'object' || Array.isArray(rawGeneric)) {
      problems.push('com.docker.network.generic must be an object of strings');
    } else {
      for (const [k, v] of Object.entries(rawGeneric)) {
        if (typeof v === 'string') generic[k] = v;
        else if (typeof v === 'number' || typeof v === 'boolean') generic[k] = String(v);
        else problems.push(`driver option "${k}" must be a string`);
      }
    }
  }
  const out: NetworkOptions = {
    generic,
    internal: options?.['com.docker.network.internal'] === true,
    ipv6: options?.['com.docker.network.enable_ipv6'] === true,
  };
  for (const [k, v] of Object.entries(generic)) {
    if (k === MTU_KEY) {
      const n = parseIntStrict(v);
      if (n === undefined) problems.push(`${MTU_KEY}="${v}" is not a whole number`);
      else out.mtu = n;
    } else if (k === VNI_KEY) {
      const n = parseIntStrict(v);
      if (n === undefined || n < VNI_MIN || n > VNI_MAX) problems.push(`${VNI_KEY}="${v}" must be a whole number from ${VNI_MIN} to ${VNI_MAX}`);
      else out.vni = n;
    } else if (k === MULTICAST_KEY) {
      const ip = parseIp(v);
      const isMulticast = ip !== undefined && (ip.family === 4 ? ip.value >> 28n === 0xen : ip.value >> 120n === 0xffn);
      if (!ip || !isMulticast) problems.push(`${MULTICAST_KEY}="${v}" must be a multicast group address (224.0.0.0/4 or ff00::/8)`);
      else out.multicast = formatIp(ip);
    } else if (k === MODE_KEY) {
      const mode = NETWORK_MODES.find((m) => m === v);
      if (mode) out.mode = mode;
      else problems.push(`${MODE_KEY}="${v}" must be ${NETWORK_MODES.join(' or ')}`);
    } else {
      problems.push(`unknown driver option "${k}"; tsoverlay understands ${SUPPORTED_OPTIONS.join(', ')}`);
    }
  }
  if (problems.length > 0) throw new TsoverlayError('INVALID_OPTION', problems.join('; '));
  return out;
};

/**
 * The network's MTU: the automatic maximum (underlay MTU − VXLAN overhead)
 * unless the user asked for less. Asking for more is refused: the frames would
 * not fit the underlay once encapsulated.
 */
export const chooseMtu = (
  requested: number | undefined,
  underlay: { ifname: string; mtu: number; family: 4 | 6 },
  ipv6: boolean,
): number => {
  const overhead = vxlanOverhead(underlay.family);
  const max = underlay.mtu - overhead;
  if (requested === undefined) return max;
  if (requested > max) {
    throw new TsoverlayError(
      'INVALID_OPTION',
      `${MTU_KEY}=${requested} is above the maximum ${max} for this host (underlay ${underlay.ifname} MTU ${underlay.mtu} − ${overhead} bytes of VXLAN overhead)`,
    );
  }
  const min = ipv6 ? MIN_MTU_IPV6 : MIN_MTU;
  if (requested < min) {
    throw new TsoverlayError('INVALID_OPTION', `${MTU_KEY}=${requested} is below the minimum ${min}${ipv6 ? ' for an IPv6 network' : ''}`);
  }
  return requested;
};

/** Normalize a MAC to lower-case colon form; undefined if malformed. */
export const normalizeMac = (text: string): string | undefined => {
  const hex = text.toLowerCase().replace(/[:.-]/g, '');
  if (!/^[0-9a-f]{12}$/.test(hex)) return undefined;
  return hex.match(/../g)?.join(':');
};

/**
 * A deterministic, locally administered unicast MAC for an endpoint: 02:42 and
 * the IPv4 address (as Docker's bridge does), so a node that knows the address
 * also knows the MAC. Without IPv4, bytes of the endpoint id.
 */
export const endpointMac = (ipv4: string | undefined, endpointId: string): string => {
  const bytes = ipv4
    ? ipv4.split('/')[0]!.split('.').map((p) => Number(p))
    : (endpointId.replace(/[^0-9a-f]/gi, '').padEnd(8, '0').slice(0, 8).match(/../g) ?? []).map((h) => Number.parseInt(h, 16));
  return ['02', '42', ...bytes.map((b) => b.toString(16).padStart(2, '0'))].join(':');
};
