/**
 * Schemas of what we keep in the store. Whatever is read back is decoded with
 * these: a store shared with other nodes is untrusted input.
 */
import { Type, type Static, type TSchema } from 'typebox';
import { Value } from 'typebox/value';

const Str = Type.String();
const StrMap = Type.Record(Type.String(), Type.String());
const Subnet = Type.Object({ poolId: Str, pool: Str, gateway: Type.Optional(Str) });

export const NetworkSchema = Type.Object({
  id: Str,
  vni: Type.Integer({ minimum: 1, maximum: 0xffffff }),
  aliases: StrMap,
  name: Type.Optional(Str),
  driver: Type.Optional(Str),
  deleted: Type.Boolean(),
  multicast: Type.Optional(Str),
  mtu: Type.Integer({ minimum: 68 }),
  internal: Type.Boolean(),
  ipv4: Type.Array(Subnet),
  ipv6: Type.Array(Subnet),
  options: StrMap,
  createdBy: Str,
  createdAt: Str,
});

export const PoolSchema = Type.Object({
  id: Str,
  space: Type.Union([Type.Literal('tsoverlay-local'), Type.Literal('tsoverlay-global')]),
  family: Type.Union([Type.Literal(4), Type.Literal(6)]),
  pool: Str,
  subPool: Type.Optional(Str),
  requested: Type.Boolean(),
  users: Type.Array(Str),
  options: StrMap,
  createdAt: Str,
});

export const AddressSchema = Type.Object({
  ip: Str,
  kind: Type.Union([Type.Literal('gateway'), Type.Literal('endpoint')]),
  node: Str,
});

export const EndpointSchema = Type.Object({
  id: Str,
  networkId: Str,
  node: Str,
  ipv4: Type.Optional(Str),
  ipv6: Type.Optional(Str),
  mac: Str,
  hostIf: Str,
  containerIf: Str,
  sandboxKey: Type.Optional(Str),
});

export const DnsNameSchema = Type.Object({
  endpointId: Str,
  network: Str,
  node: Str,
  containerId: Str,
  name: Str,
  aliases: Type.Array(Str),
  ipv4: Type.Optional(Str),
  ipv6: Type.Optional(Str),
});

export const AliasSchema = Type.Object({ network: Str, node: Str });

export const NodeSchema = Type.Object({
  node: Str,
  address: Str,
  vxlanPort: Type.Integer({ minimum: 1, maximum: 65535 }),
  hostname: Str,
  version: Str,
  startedAt: Str,
});

export type StoredNetwork = Static<typeof NetworkSchema>;

/** Parse JSON text read from the store and check it against a schema. */
export const decode = <S extends TSchema>(schema: S, text: string, where: string): Static<S> => {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Error(`store entry ${where} is not JSON`, { cause: e });
  }
  if (!Value.Check(schema, value)) {
    const first = [...Value.Errors(schema, value)][0];
    throw new Error(`store entry ${where} does not match its schema${first ? `: ${first.instancePath} ${first.message}` : ''}`);
  }
  return value as Static<S>;
};
