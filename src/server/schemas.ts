/**
 * Docker's plugin wire format: request bodies as Docker sends them (PascalCase,
 * see shared/docs/docker-plugin-protocol.md). Unknown extra fields are
 * allowed — newer engines add some — but every field we read is checked.
 */
import { Type, type Static } from 'typebox';

/** IDs become store path segments: no slashes, no dot-only names. */
const Id = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$' });
const Text = Type.String({ maxLength: 4096 });
const StringMap = Type.Record(Type.String(), Type.String());
const NullableStringMap = Type.Union([StringMap, Type.Null()]);

const IpamData = Type.Object({
  AddressSpace: Type.String({ maxLength: 256 }),
  Pool: Text,
  Gateway: Type.Optional(Text),
  AuxAddresses: Type.Optional(Type.Union([StringMap, Type.Null()])),
});
const IpamDataList = Type.Union([Type.Array(IpamData, { maxItems: 64 }), Type.Null()]);

export const NetworkBody = Type.Object({ NetworkID: Id });
export const EndpointBody = Type.Object({ NetworkID: Id, EndpointID: Id });

export const CreateNetworkBody = Type.Object({
  NetworkID: Id,
  Options: Type.Optional(Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()])),
  IPv4Data: Type.Optional(IpamDataList),
  IPv6Data: Type.Optional(IpamDataList),
});

export const CreateEndpointBody = Type.Object({
  NetworkID: Id,
  EndpointID: Id,
  Interface: Type.Optional(
    Type.Union([
      Type.Object({
        Address: Type.Optional(Text),
        AddressIPv6: Type.Optional(Text),
        MacAddress: Type.Optional(Text),
      }),
      Type.Null(),
    ]),
  ),
  Options: Type.Optional(Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()])),
});

export const JoinBody = Type.Object({
  NetworkID: Id,
  EndpointID: Id,
  SandboxKey: Type.Optional(Text),
  Options: Type.Optional(Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()])),
});

export const DiscoverBody = Type.Object({
  DiscoveryType: Type.Integer(),
  DiscoveryData: Type.Optional(Type.Unknown()),
});

export const RequestPoolBody = Type.Object({
  AddressSpace: Type.String({ maxLength: 256 }),
  Pool: Type.Optional(Text),
  SubPool: Type.Optional(Text),
  Options: Type.Optional(NullableStringMap),
  V6: Type.Optional(Type.Boolean()),
});

export const PoolBody = Type.Object({ PoolID: Id });

export const RequestAddressBody = Type.Object({
  PoolID: Id,
  Address: Type.Optional(Text),
  Options: Type.Optional(NullableStringMap),
});

export const ReleaseAddressBody = Type.Object({ PoolID: Id, Address: Text });

export type CreateNetworkRequest = Static<typeof CreateNetworkBody>;
export type CreateEndpointRequest = Static<typeof CreateEndpointBody>;
export type JoinRequest = Static<typeof JoinBody>;
export type RequestPoolRequest = Static<typeof RequestPoolBody>;
export type RequestAddressRequest = Static<typeof RequestAddressBody>;
export type ReleaseAddressRequest = Static<typeof ReleaseAddressBody>;
export type NetworkRequest = Static<typeof NetworkBody>;
export type EndpointRequest = Static<typeof EndpointBody>;
export type PoolRequest = Static<typeof PoolBody>;
