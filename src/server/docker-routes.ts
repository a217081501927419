/**
 * One row per Docker plugin method: its path, the schema of its body and the
 * core call. Methods Docker calls with an empty body have no schema. Docker's
 * PascalCase names end here: each row turns them into the core's own types.
 */
import { GLOBAL_SPACE, LOCAL_SPACE } from '../model.js';
import { type Reply, type Route, withBody, withoutBody } from './route.js';
import {
  CreateEndpointBody,
  CreateNetworkBody,
  type CreateNetworkRequest,
  DiscoverBody,
  EndpointBody,
  JoinBody,
  NetworkBody,
  PoolBody,
  ReleaseAddressBody,
  RequestAddressBody,
  RequestPoolBody,
} from './schemas.js';

/** What tsoverlay always answers, also before its store is connected (dockerd registers plugins with these). */
export const CAPABILITIES: Readonly<{ Scope: 'local'; ConnectivityScope: 'global' }> = { Scope: 'local', ConnectivityScope: 'global' };
export const IPAM_CAPABILITIES: Readonly<{ RequiresMACAddress: false; RequiresRequestReplay: false }> = {
  RequiresMACAddress: false,
  RequiresRequestReplay: false,
};
export const ADDRESS_SPACE_NAMES: Readonly<{ LocalDefaultAddressSpace: string; GlobalDefaultAddressSpace: string }> = {
  LocalDefaultAddressSpace: LOCAL_SPACE,
  GlobalDefaultAddressSpace: GLOBAL_SPACE,
};

const ipamList = (list: CreateNetworkRequest['IPv4Data']) =>
  (list ?? []).map((d) => ({
    addressSpace: d.AddressSpace,
    pool: d.Pool,
    ...(d.Gateway ? { gateway: d.Gateway } : {}),
    ...(d.AuxAddresses ? { auxAddresses: d.AuxAddresses } : {}),
  }));

const ok = async (): Promise<Reply> => ({});

const NETWORK_DRIVER: readonly Route[] = [
  withoutBody('NetworkDriver.GetCapabilities', async () => CAPABILITIES),
  withBody('NetworkDriver.CreateNetwork', CreateNetworkBody, async ({ driver }, r) => {
    await driver.createNetwork({
      networkId: r.NetworkID,
      options: r.Options ?? {},
      ipv4: ipamList(r.IPv4Data),
      ipv6: ipamList(r.IPv6Data),
    });
    return {};
  }),
  // Swarm managers only; tsoverlay reports Scope "local", so this is not called. Echo the options.
  withBody('NetworkDriver.AllocateNetwork', CreateNetworkBody, async (_core, r) => ({ Options: r.Options ?? {} })),
  withBody('NetworkDriver.DeleteNetwork', NetworkBody, async ({ driver }, r) => {
    await driver.deleteNetwork(r.NetworkID);
    return {};
  }),
  withBody('NetworkDriver.FreeNetwork', NetworkBody, ok),
  withBody('NetworkDriver.CreateEndpoint', CreateEndpointBody, async ({ driver }, r) => {
    const res = await driver.createEndpoint({
      networkId: r.NetworkID,
      endpointId: r.EndpointID,
      address: r.Interface?.Address ?? '',
      addressIPv6: r.Interface?.AddressIPv6 ?? '',
      macAddress: r.Interface?.MacAddress ?? '',
    });
    // Only fields Docker left empty may be filled in (else it rolls back).
    return res.macAddress ? { Interface: { MacAddress: res.macAddress } } : {};
  }),
  withBody('NetworkDriver.EndpointOperInfo', EndpointBody, async () => ({ Value: {} })),
  withBody('NetworkDriver.DeleteEndpoint', EndpointBody, async ({ driver }, r) => {
    await driver.deleteEndpoint(r.NetworkID, r.EndpointID);
    return {};
  }),
  withBody('NetworkDriver.Join', JoinBody, async ({ driver }, r) => {
    const j = await driver.join(r.NetworkID, r.EndpointID, r.SandboxKey ?? '');
    return {
      InterfaceName: { SrcName: j.srcName, DstPrefix: j.dstPrefix },
      ...(j.disableGatewayService ? { DisableGatewayService: true } : {}),
      ...(j.staticRoutes.length > 0
        ? { StaticRoutes: j.staticRoutes.map((s) => ({ Destination: s.destination, RouteType: s.routeType })) }
        : {}),
    };
  }),
  withBody('NetworkDriver.Leave', EndpointBody, async ({ driver }, r) => {
    await driver.leave(r.NetworkID, r.EndpointID);
    return {};
  }),
  withBody('NetworkDriver.DiscoverNew', DiscoverBody, ok),
  withBody('NetworkDriver.DiscoverDelete', DiscoverBody, ok),
  withBody('NetworkDriver.ProgramExternalConnectivity', EndpointBody, ok),
  withBody('NetworkDriver.RevokeExternalConnectivity', EndpointBody, ok),
];

const IPAM_DRIVER: readonly Route[] = [
  withoutBody('IpamDriver.GetCapabilities', async () => IPAM_CAPABILITIES),
  withoutBody('IpamDriver.GetDefaultAddressSpaces', async () => ADDRESS_SPACE_NAMES),
  withBody('IpamDriver.RequestPool', RequestPoolBody, async ({ ipam }, r) => {
    const res = await ipam.requestPool({
      addressSpace: r.AddressSpace,
      pool: r.Pool ?? '',
      subPool: r.SubPool ?? '',
      options: r.Options ?? {},
      v6: r.V6 ?? false,
    });
    return { PoolID: res.poolId, Pool: res.pool, Data: {} };
  }),
  withBody('IpamDriver.ReleasePool', PoolBody, async ({ ipam }, r) => {
    await ipam.releasePool(r.PoolID);
    return {};
  }),
  withBody('IpamDriver.RequestAddress', RequestAddressBody, async ({ ipam }, r) => {
    const address = await ipam.requestAddress({ poolId: r.PoolID, address: r.Address ?? '', options: r.Options ?? {} });
    return { Address: address, Data: {} };
  }),
  withBody('IpamDriver.ReleaseAddress', ReleaseAddressBody, async ({ ipam }, r) => {
    await ipam.releaseAddress(r.PoolID, r.Address);
    return {};
  }),
];

export const ROUTES: readonly Route[] = [
  withoutBody('Plugin.Activate', async () => ({ Implements: ['NetworkDriver', 'IpamDriver'] })),
  ...NETWORK_DRIVER,
  ...IPAM_DRIVER,
];
