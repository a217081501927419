/**
 * The questions about a network's or an endpoint's devices whose answer
 * depends on the layout, answered once each (an exhaustive switch): callers
 * ask these instead of looking at the layout themselves.
 */
import type { EndpointDevices, NetworkDevices } from './dataplane.js';

const unknownLayout = (spec: never): never => {
  throw new Error(`unknown layout ${JSON.stringify(spec)}`);
};

/**
 * The host's own device on the network: the bridge, or the host macvlan.
 * The resolver's address and the routes of its table live on it.
 */
export const hostDevice = (spec: NetworkDevices): string => {
  switch (spec.layout) {
    case 'bridge':
      return spec.bridge;
    case 'macvlan':
      return spec.hostMacvlan;
    default:
      return unknownLayout(spec);
  }
};

/** The fixed MAC of the host's device, if the spec sets one. */
export const hostDeviceMac = (spec: NetworkDevices): string | undefined => {
  switch (spec.layout) {
    case 'bridge':
      return spec.bridgeMac;
    case 'macvlan':
      return spec.hostMacvlanMac;
    default:
      return unknownLayout(spec);
  }
};

/**
 * The endpoint's device that stays in this namespace while the endpoint is
 * in a container: the veth's host end; none for a macvlan (the container
 * end is all there is). Log it as the endpoint's `ifname`.
 */
export const endpointHostIf = (spec: EndpointDevices): string | undefined => {
  switch (spec.layout) {
    case 'bridge':
      return spec.hostIf;
    case 'macvlan':
      return undefined;
    default:
      return unknownLayout(spec);
  }
};
