/**
 * Schemas of what we keep in the store. Whatever is read back is decoded with
 * these: a store shared with other nodes is untrusted input.
 */
import { TsoverlayError } from '../errors.js';
import { S, compileCheck, type Schema, type Static } from '../util/schema.js';

const Str = S.string();
const StrMap = S.record(S.string());
const Subnet = S.object({ poolId: Str, pool: Str, gateway: S.optional(Str) });

export const NetworkSchema = S.object({
  id: Str,
  vni: S.integer({ minimum: 1, maximum: 0xffffff }),
  aliases: StrMap,
  name: S.optional(Str),
  driver: S.optional(Str),
  deleted: S.boolean(),
  multicast: S.optional(Str),
  /** The layout: 'macvlan', or absent for the bridge layout (model.ts `networkLayout`). */
  mode: S.optional(S.literal('macvlan')),
  mtu: S.integer({ minimum: 68 }),
  internal: S.boolean(),
  ipv4: S.array(Subnet),
  ipv6: S.array(Subnet),
  options: StrMap,
  createdBy: Str,
  createdAt: Str,
});

export const PoolSchema = S.object({
  id: Str,
  space: S.union(S.literal('tsoverlay-local'), S.literal('tsoverlay-global')),
  family: S.union(S.literal(4), S.literal(6)),
  pool: Str,
  subPool: S.optional(Str),
  requested: S.boolean(),
  users: S.array(Str),
  options: StrMap,
  createdAt: Str,
  claim: S.optional(Str),
});

export const AddressSchema = S.object({
  ip: Str,
  kind: S.union(S.literal('gateway'), S.literal('endpoint')),
  node: Str,
  claim: S.optional(Str),
});

export const EndpointSchema = S.object({
  id: Str,
  networkId: Str,
  node: Str,
  ipv4: S.optional(Str),
  ipv6: S.optional(Str),
  mac: Str,
  hostIf: Str,
  containerIf: Str,
  sandboxKey: S.optional(Str),
});

export const DnsNameSchema = S.object({
  endpointId: Str,
  network: Str,
  node: Str,
  containerId: Str,
  name: Str,
  aliases: S.array(Str),
  ipv4: S.optional(Str),
  ipv6: S.optional(Str),
});

export const AliasSchema = S.object({ network: Str, node: Str });

/** A network removed through Docker: its VNI's devices may go on every node. */
export const TombstoneSchema = S.object({
  network: Str,
  vni: S.integer({ minimum: 1, maximum: 0xffffff }),
  deletedAt: Str,
  by: Str,
});

export const NodeSchema = S.object({
  node: Str,
  address: Str,
  vxlanPort: S.integer({ minimum: 1, maximum: 65535 }),
  hostname: Str,
  version: Str,
  startedAt: Str,
});

/**
 * When a node was first seen gone (no /nodes/<node>) by the collector-lock
 * holder `by`, on its clock (`since`, ISO). Written once, never moved forward.
 */
export const GoneSchema = S.object({
  node: Str,
  since: Str,
  by: Str,
});

export type GoneRecord = Static<typeof GoneSchema>;

export type StoredNetwork = Static<typeof NetworkSchema>;

const checks = new WeakMap<Schema, ReturnType<typeof compileCheck>>();

/**
 * Parse JSON text read from the store and check it against a schema. A
 * record that fails is a BAD_RECORD error naming its path and the reason:
 * lists skip it (StoreAccess.readAll), single reads pass it on.
 */
export const decode = <T>(schema: Schema<T>, text: string, where: string): T => {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new TsoverlayError('BAD_RECORD', `store entry ${where} is not JSON`, { cause: e });
  }
  let check = checks.get(schema);
  if (!check) checks.set(schema, (check = compileCheck(schema)));
  if (!check(value)) throw new TsoverlayError('BAD_RECORD', `store entry ${where} does not match its schema: ${check.firstError()}`);
  return value as T;
};
