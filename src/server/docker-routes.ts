/**
 * One row per Docker plugin method: its path, the schema of its body and the
 * core call. Methods Docker calls with an empty body have no schema.
 */
import type { Schema } from '../util/schema.js';
import type { NetworkDriver } from '../driver/network-driver.js';
import type { Ipam } from '../ipam/ipam.js';
import { GLOBAL_SPACE, LOCAL_SPACE } from '../model.js';
import {
  CreateEndpointBody,
  type CreateEndpointRequest,
  CreateNetworkBody,
  type CreateNetworkRequest,
  DiscoverBody,
  EndpointBody,
  type EndpointRequest,
  JoinBody,
  type JoinRequest,
  NetworkBody,
  type NetworkRequest,
  PoolBody,
  type PoolRequest,
  ReleaseAddressBody,
  type ReleaseAddressRequest,
  RequestAddressBody,
  type RequestAddressRequest,
  RequestPoolBody,
  type RequestPoolRequest,
} from './schemas.js';

export interface Core {
  driver: NetworkDriver;
  ipam: Ipam;
}

/** What tsoverlay always answers, also before its store is connected (dockerd registers plugins with these). */
export const CAPABILITIES = { Scope: 'local', ConnectivityScope: 'global' } as const;
export const IPAM_CAPABILITIES = { RequiresMACAddress: false, RequiresRequestReplay: false } as const;
export const ADDRESS_SPACE_NAMES = { LocalDefaultAddressSpace: LOCAL_SPACE, GlobalDefaultAddressSpace: GLOBAL_SPACE } as const;

export interface Route {
  /** e.g. "NetworkDriver.CreateNetwork"; served at POST /<method>. */
  method: string;
  /** Body schema; absent for calls Docker sends without a body. */
  body?: Schema;
  handle(core: Core, body: unknown): Promise<object>;
}

const ipamList = (list: CreateNetworkRequest['IPv4Data']) =>
  (list ?? []).map((d) => ({
    addressSpace: d.AddressSpace,
    pool: d.Pool,
    ...(d.Gateway ? { gateway: d.Gateway } : {}),
    ...(d.AuxAddresses ? { auxAddresses: d.AuxAddresses } : {}),
  }));

const ok = async (): Promise<object> => ({});

export const ROUTES: readonly Route[] = [
  { method: 'Plugin.Activate', handle: async () => ({ Implements: ['NetworkDriver', 'IpamDriver'] }) },

  // ---- NetworkDriver ----
  { method: 'NetworkDriver.GetCapabilities', handle: async () => CAPABILITIES },
  {
    method: 'NetworkDriver.CreateNetwork',
    body: CreateNetworkBody,
    handle: async ({ driver }, b) => {
      const r = b as CreateNetworkRequest;
      await driver.createNetwork({
        networkId: r.NetworkID,
        options: r.Options ?? {},
        ipv4: ipamList(r.IPv4Data),
        ipv6: ipamList(r.IPv6Data),
      });
      return {};
    },
  },
  {
    // Swarm managers only; tsoverlay reports Scope "local", so this is not called. Echo the options.
    method: 'NetworkDriver.AllocateNetwork',
    body: CreateNetworkBody,
    handle: async (_core, b) => ({ Options: (b as CreateNetworkRequest).Options ?? {} }),
  },
  {
    method: 'NetworkDriver.DeleteNetwork',
    body: NetworkBody,
    handle: async ({ driver }, b) => {
      await driver.deleteNetwork((b as NetworkRequest).NetworkID);
      return {};
    },
  },
  { method: 'NetworkDriver.FreeNetwork', body: NetworkBody, handle: ok },
  {
    method: 'NetworkDriver.CreateEndpoint',
    body: CreateEndpointBody,
    handle: async ({ driver }, b) => {
      const r = b as CreateEndpointRequest;
      const res = await driver.createEndpoint({
        networkId: r.NetworkID,
        endpointId: r.EndpointID,
        address: r.Interface?.Address ?? '',
        addressIPv6: r.Interface?.AddressIPv6 ?? '',
        macAddress: r.Interface?.MacAddress ?? '',
      });
      // Only fields Docker left empty may be filled in (else it rolls back).
      return res.macAddress ? { Interface: { MacAddress: res.macAddress } } : {};
    },
  },
  { method: 'NetworkDriver.EndpointOperInfo', body: EndpointBody, handle: async () => ({ Value: {} }) },
  {
    method: 'NetworkDriver.DeleteEndpoint',
    body: EndpointBody,
    handle: async ({ driver }, b) => {
      const r = b as EndpointRequest;
      await driver.deleteEndpoint(r.NetworkID, r.EndpointID);
      return {};
    },
  },
  {
    method: 'NetworkDriver.Join',
    body: JoinBody,
    handle: async ({ driver }, b) => {
      const r = b as JoinRequest;
      const j = await driver.join(r.NetworkID, r.EndpointID, r.SandboxKey ?? '');
      return {
        InterfaceName: { SrcName: j.srcName, DstPrefix: j.dstPrefix },
        ...(j.disableGatewayService ? { DisableGatewayService: true } : {}),
        ...(j.staticRoutes.length > 0
          ? { StaticRoutes: j.staticRoutes.map((r) => ({ Destination: r.destination, RouteType: r.routeType })) }
          : {}),
      };
    },
  },
  {
    method: 'NetworkDriver.Leave',
    body: EndpointBody,
    handle: async ({ driver }, b) => {
      const r = b as EndpointRequest;
      await driver.leave(r.NetworkID, r.EndpointID);
      return {};
    },
  },
  { method: 'NetworkDriver.DiscoverNew', body: DiscoverBody, handle: ok },
  { method: 'NetworkDriver.DiscoverDelete', body: DiscoverBody, handle: ok },
  { method: 'NetworkDriver.ProgramExternalConnectivity', body: EndpointBody, handle: ok },
  { method: 'NetworkDriver.RevokeExternalConnectivity', body: EndpointBody, handle: ok },

  // ---- IpamDriver ----
  { method: 'IpamDriver.GetCapabilities', handle: async () => IPAM_CAPABILITIES },
  { method: 'IpamDriver.GetDefaultAddressSpaces', handle: async () => ADDRESS_SPACE_NAMES },
  {
    method: 'IpamDriver.RequestPool',
    body: RequestPoolBody,
    handle: async ({ ipam }, b) => {
      const r = b as RequestPoolRequest;
      const res = await ipam.requestPool({
        addressSpace: r.AddressSpace,
        pool: r.Pool ?? '',
        subPool: r.SubPool ?? '',
        options: r.Options ?? {},
        v6: r.V6 ?? false,
      });
      return { PoolID: res.poolId, Pool: res.pool, Data: {} };
    },
  },
  {
    method: 'IpamDriver.ReleasePool',
    body: PoolBody,
    handle: async ({ ipam }, b) => {
      await ipam.releasePool((b as PoolRequest).PoolID);
      return {};
    },
  },
  {
    method: 'IpamDriver.RequestAddress',
    body: RequestAddressBody,
    handle: async ({ ipam }, b) => {
      const r = b as RequestAddressRequest;
      const address = await ipam.requestAddress({ poolId: r.PoolID, address: r.Address ?? '', options: r.Options ?? {} });
      return { Address: address, Data: {} };
    },
  },
  {
    method: 'IpamDriver.ReleaseAddress',
    body: ReleaseAddressBody,
    handle: async ({ ipam }, b) => {
      const r = b as ReleaseAddressRequest;
      await ipam.releaseAddress(r.PoolID, r.Address);
      return {};
    },
  },
];
