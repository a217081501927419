/**
 * The Docker engine port: what tsoverlay asks of its own node's dockerd
 * (`--docker-host`). The plugin API carries no network names, so names come
 * from here, and networks are replicated to every node through here.
 */

export interface EngineNetwork {
  id: string;
  name: string;
  driver: string;
  /** IPAM driver name ("default" for Docker's own). */
  ipamDriver: string;
  subnets: Array<{ subnet: string; gateway?: string; ipRange?: string }>;
  options: Record<string, string>;
  internal: boolean;
  ipv6: boolean;
  /** Containers attached on this engine (filled by inspectNetwork only). */
  containers: number;
  /** Their endpoints (inspectNetwork only): answered without waiting for a container being started. */
  endpoints?: Array<{ containerId: string; name: string; endpointId: string }>;
}

export interface CreateNetworkSpec {
  name: string;
  driver: string;
  ipamDriver: string;
  subnets: Array<{ subnet: string; gateway?: string; ipRange?: string }>;
  options: Record<string, string>;
  internal: boolean;
  ipv6: boolean;
  /**
   * false: an IPv6-only network (Docker 28+ `--ipv4=false`; without it Docker
   * 28 adds an IPv4 pool of its own). Absent: the engine's default (IPv4 on).
   */
  ipv4?: boolean;
  labels: Record<string, string>;
}

/** A container's attachment to one network, as its engine reports it. */
export interface EngineAttachment {
  networkId: string;
  endpointId: string;
  aliases: string[];
  ipv4?: string;
  ipv6?: string;
}

export interface EngineContainer {
  id: string;
  /** Without Docker's leading "/". */
  name: string;
  attachments: EngineAttachment[];
}

export interface EngineEvent {
  type: string;
  action: string;
  id: string;
  attributes: Record<string, string>;
}

export class EngineError extends Error {
  override readonly name = 'EngineError';
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface DockerEngine {
  /** Networks of the given driver names (all networks for []). */
  listNetworks(drivers: readonly string[]): Promise<EngineNetwork[]>;
  inspectNetwork(idOrName: string): Promise<EngineNetwork | undefined>;
  /** Returns the new network's id. EngineError with status 409 if the name is taken. */
  createNetwork(spec: CreateNetworkSpec): Promise<string>;
  /** False if it did not exist. EngineError with status 403/409 while containers use it. */
  removeNetwork(idOrName: string): Promise<boolean>;
  /** Running containers with their attachments. */
  listContainers(): Promise<EngineContainer[]>;
  inspectContainer(id: string): Promise<EngineContainer | undefined>;
  /**
   * Follow the engine's event stream (network events) until the signal
   * aborts; reconnects by itself. `onConnected` runs after every (re)connect
   * so the caller can resync what it may have missed.
   */
  watchEvents(handlers: { onEvent: (e: EngineEvent) => void; onConnected?: () => void }, signal: AbortSignal): void;
}
