/**
 * From store records to the devices they stand for on this node: a network
 * record to its `NetworkDevices`, an endpoint record to its
 * `EndpointDevices`, in the network's layout. Pure. The driver (at Docker's
 * calls) and the reconciler (computing what the kernel should hold) both
 * build their specs here, so they always ask the dataplane for the same
 * devices.
 */
import { createHash } from 'node:crypto';
import type { EndpointRecord, NetworkRecord } from '../model.js';
import { networkLayout } from '../model.js';
import type { EndpointDevices, NetworkDevices, Underlay } from './dataplane.js';
import { endpointHostIf } from './layout.js';
import { bridgeName, hostMacvlanName, vxlanName } from './names.js';

/**
 * A stable, locally administered MAC for a network's host device (bridge or
 * host macvlan) on this node: 06 (not 02, Docker's and our endpoints'
 * prefix), then a hash of the node's underlay address and the VNI, so it
 * differs between nodes and networks.
 */
export const bridgeMac = (underlayAddress: string, vni: number): string => {
  const h = createHash('sha256').update(`${underlayAddress}/${vni}`).digest();
  return ['06', ...[...h.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
};

export const networkDevices = (net: NetworkRecord, underlay: Underlay, port: number): NetworkDevices => {
  const vxlan = {
    vni: net.vni,
    vxlan: vxlanName(net.vni),
    port,
    local: underlay.address,
    underlayIndex: underlay.ifindex,
    mtu: net.mtu,
    ...(net.multicast ? { group: net.multicast } : {}),
  };
  const mac = bridgeMac(underlay.address, net.vni);
  const layout = networkLayout(net);
  switch (layout) {
    case 'bridge':
      return { ...vxlan, layout, bridge: bridgeName(net.vni), bridgeMac: mac };
    case 'macvlan':
      return { ...vxlan, layout, hostMacvlan: hostMacvlanName(net.vni), hostMacvlanMac: mac };
    default: {
      const never: never = layout;
      throw new Error(`unknown layout ${String(never)}`);
    }
  }
};

export const endpointDevices = (ep: EndpointRecord, net: NetworkRecord): EndpointDevices => {
  const end = { containerIf: ep.containerIf, mtu: net.mtu, mac: ep.mac };
  const layout = networkLayout(net);
  switch (layout) {
    case 'bridge':
      return { ...end, layout, hostIf: ep.hostIf, bridge: bridgeName(net.vni) };
    case 'macvlan':
      return { ...end, layout, vxlan: vxlanName(net.vni) };
    default: {
      const never: never = layout;
      throw new Error(`unknown layout ${String(never)}`);
    }
  }
};

/** The name of the network's host device on this node (bridge or host macvlan). */
const hostDeviceName = (net: NetworkRecord): string => {
  const layout = networkLayout(net);
  switch (layout) {
    case 'bridge':
      return bridgeName(net.vni);
    case 'macvlan':
      return hostMacvlanName(net.vni);
    default: {
      const never: never = layout;
      throw new Error(`unknown layout ${String(never)}`);
    }
  }
};

/**
 * The links to delete when the network leaves this node, in order: the
 * host ends of this node's endpoints (a macvlan endpoint has none: it goes
 * with the VXLAN device), the VXLAN device, the host's device.
 */
export const networkLinks = (net: NetworkRecord, ownEndpoints: readonly EndpointRecord[]): string[] => [
  ...ownEndpoints.flatMap((ep) => endpointHostIf(endpointDevices(ep, net)) ?? []),
  vxlanName(net.vni),
  hostDeviceName(net),
];
