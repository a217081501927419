/**
 * Docker's plugin wire format: request bodies the way Docker sends them (PascalCase,
 * see shared/docs/docker-plugin-protocol.md). Unknown extra fields are
 * allowed — newer engines add some — but every field we read is checked.
 */
import { S, type Static } from '../util/schema.js';

/** IDs become store path segments: no slashes, no dot-only names. */
const Id = S.string({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$' });
const Text = S.string({ maxLength: 4096 });
const StringMap = S.record(S.string());
const NullableStringMap = S.union(StringMap, S.null());

const IpamData = S.object({
  AddressSpace: S.string({ maxLength: 256 }),
  Pool: Text,
  Gateway: S.optional(Text),
  AuxAddresses: S.optional(S.union(StringMap, S.null())),
});
const IpamDataList = S.union(S.array(IpamData, { maxItems: 64 }), S.null());

export const NetworkBody = S.object({ NetworkID: Id });
export const EndpointBody = S.object({ NetworkID: Id, EndpointID: Id });

export const CreateNetworkBody = S.object({
  NetworkID: Id,
  Options: S.optional(S.union(S.record(S.unknown()), S.null())),
  IPv4Data: S.optional(IpamDataList),
  IPv6Data: S.optional(IpamDataList),
});

export const CreateEndpointBody = S.object({
  NetworkID: Id,
  EndpointID: Id,
  Interface: S.optional(
    S.union(
      S.object({
        Address: S.optional(Text),
        AddressIPv6: S.optional(Text),
        MacAddress: S.optional(Text),
      }),
      S.null(),
    ),
  ),
  Options: S.optional(S.union(S.record(S.unknown()), S.null())),
});

export const JoinBody = S.object({
  NetworkID: Id,
  EndpointID: Id,
  SandboxKey: S.optional(Text),
  Options: S.optional(S.union(S.record(S.unknown()), S.null())),
});

export const DiscoverBody = S.object({
  DiscoveryType: S.integer(),
  DiscoveryData: S.optional(S.unknown()),
});

export const RequestPoolBody = S.object({
  AddressSpace: S.string({ maxLength: 256 }),
  Pool: S.optional(Text),
  SubPool: S.optional(Text),
  Options: S.optional(NullableStringMap),
  V6: S.optional(S.boolean()),
});

export const PoolBody = S.object({ PoolID: Id });

export const RequestAddressBody = S.object({
  PoolID: Id,
  Address: S.optional(Text),
  Options: S.optional(NullableStringMap),
});

export const ReleaseAddressBody = S.object({ PoolID: Id, Address: Text });

export type CreateNetworkRequest = Static<typeof CreateNetworkBody>;
export type CreateEndpointRequest = Static<typeof CreateEndpointBody>;
export type JoinRequest = Static<typeof JoinBody>;
export type RequestPoolRequest = Static<typeof RequestPoolBody>;
export type RequestAddressRequest = Static<typeof RequestAddressBody>;
export type ReleaseAddressRequest = Static<typeof ReleaseAddressBody>;
export type NetworkRequest = Static<typeof NetworkBody>;
export type EndpointRequest = Static<typeof EndpointBody>;
export type PoolRequest = Static<typeof PoolBody>;
