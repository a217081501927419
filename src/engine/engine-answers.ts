/**
 * What the engine API answers (Docker's PascalCase JSON), as schemas, and
 * its conversion to the port's types. Answers are decoded before use, like
 * store records: a malformed answer is an EngineError that says what is
 * wrong, not a crash further on. Fields the engine may send as null (Go's nil
 * maps and slices) are allowed to be null; fields we do not read are not
 * checked, so newer engines may add any.
 */
import { S, type Schema, type Static, compileCheck } from '../util/schema.js';
import { type EngineContainer, EngineError, type EngineEvent, type EngineNetwork } from './engine.js';

const Str = S.string();
const StrMap = S.record(S.string());
/** Absent, null or of the schema. */
const maybe = <T>(schema: Schema<T>) => S.optional(S.union(schema, S.null()));

const NetworkAnswer = S.object({
  Id: Str,
  Name: Str,
  Driver: Str,
  Internal: maybe(S.boolean()),
  EnableIPv6: maybe(S.boolean()),
  Options: maybe(StrMap),
  IPAM: maybe(
    S.object({
      Driver: maybe(Str),
      Config: maybe(S.array(S.object({ Subnet: maybe(Str), Gateway: maybe(Str), IPRange: maybe(Str) }))),
    }),
  ),
  Containers: maybe(S.record(S.object({ Name: maybe(Str), EndpointID: maybe(Str) }))),
});

const EndpointSettings = S.object({
  NetworkID: maybe(Str),
  EndpointID: maybe(Str),
  Aliases: maybe(S.array(Str)),
  IPAddress: maybe(Str),
  GlobalIPv6Address: maybe(Str),
});

/** Both the list entry (`Names`) and the inspect answer (`Name`). */
const ContainerAnswer = S.object({
  Id: Str,
  Name: maybe(Str),
  Names: maybe(S.array(Str)),
  NetworkSettings: maybe(S.object({ Networks: maybe(S.record(EndpointSettings)) })),
});

const EventAnswer = S.object({
  Type: maybe(Str),
  Action: maybe(Str),
  Actor: maybe(S.object({ ID: maybe(Str), Attributes: maybe(StrMap) })),
});

const CreatedAnswer = S.object({ Id: Str });
const ErrorAnswer = S.object({ message: Str });
const VersionAnswer = S.object({ ApiVersion: Str });

export type NetworkAnswer = Static<typeof NetworkAnswer>;
export type ContainerAnswer = Static<typeof ContainerAnswer>;

const checks = {
  network: compileCheck(NetworkAnswer),
  networks: compileCheck(S.array(NetworkAnswer)),
  container: compileCheck(ContainerAnswer),
  containers: compileCheck(S.array(ContainerAnswer)),
  event: compileCheck(EventAnswer),
  created: compileCheck(CreatedAnswer),
  error: compileCheck(ErrorAnswer),
  version: compileCheck(VersionAnswer),
};

/** The value if it is what `check` expects; else an EngineError naming the call and the first problem. */
const decode = <T>(check: { (value: unknown): value is T; firstError(): string }, value: unknown, what: string): T => {
  if (check(value)) return value;
  throw new EngineError(`${what}: unexpected answer from the engine: ${check.firstError()}`);
};

export const toNetwork = (n: NetworkAnswer): EngineNetwork => ({
  id: n.Id,
  name: n.Name,
  driver: n.Driver,
  ipamDriver: n.IPAM?.Driver ?? 'default',
  subnets: (n.IPAM?.Config ?? [])
    .filter((c) => c.Subnet)
    .map((c) => ({ subnet: c.Subnet ?? '', ...(c.Gateway ? { gateway: c.Gateway } : {}), ...(c.IPRange ? { ipRange: c.IPRange } : {}) })),
  options: n.Options ?? {},
  internal: n.Internal === true,
  ipv6: n.EnableIPv6 === true,
  containers: Object.keys(n.Containers ?? {}).length,
  ...(n.Containers
    ? {
        endpoints: Object.entries(n.Containers)
          .filter(([, c]) => c.EndpointID && c.Name)
          .map(([id, c]) => ({ containerId: id, name: c.Name ?? '', endpointId: c.EndpointID ?? '' })),
      }
    : {}),
});

export const toContainer = (c: ContainerAnswer): EngineContainer => ({
  id: c.Id,
  name: (c.Name ?? c.Names?.[0] ?? '').replace(/^\//, ''),
  attachments: Object.values(c.NetworkSettings?.Networks ?? {})
    .filter((n) => n.NetworkID && n.EndpointID)
    .map((n) => ({
      networkId: n.NetworkID ?? '',
      endpointId: n.EndpointID ?? '',
      aliases: n.Aliases ?? [],
      ...(n.IPAddress ? { ipv4: n.IPAddress } : {}),
      ...(n.GlobalIPv6Address ? { ipv6: n.GlobalIPv6Address } : {}),
    })),
});

/** Decoders for each call's answer; `what` names the call in the error. */
export const answers = {
  network: (v: unknown, what: string): EngineNetwork => toNetwork(decode(checks.network, v, what)),
  networks: (v: unknown, what: string): EngineNetwork[] => decode(checks.networks, v, what).map(toNetwork),
  container: (v: unknown, what: string): EngineContainer => toContainer(decode(checks.container, v, what)),
  containers: (v: unknown, what: string): EngineContainer[] => decode(checks.containers, v, what).map(toContainer),
  createdId: (v: unknown, what: string): string => decode(checks.created, v, what).Id,
  event: (v: unknown): EngineEvent => {
    const e = decode(checks.event, v, 'event');
    return { type: e.Type ?? '', action: e.Action ?? '', id: e.Actor?.ID ?? '', attributes: e.Actor?.Attributes ?? {} };
  },
  /** The engine's own message in an error answer, if it sent one. */
  errorMessage: (v: unknown): string | undefined => (checks.error(v) ? v.message : undefined),
  /** The API version GET /version names, if it does. */
  apiVersion: (v: unknown): string | undefined => (checks.version(v) ? v.ApiVersion : undefined),
};
