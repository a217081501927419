// Lab harness for tsoverlay's integration tests and benchmarks.
//
//   const lab = await Lab.create({ hosts: [{ name: 'h1' }, { name: 'h2', mtu: 9000 }] });
//   t.teardown(() => lab.destroy());
//   const h1 = lab.host('h1');
//   await h1.startPlugin();
//   await docker(h1, 'network', 'create', '-d', 'tsoverlay', '--ipam-driver', 'tsoverlay', 'n1');
//
// See test/lab/README.md.
import type { LabHost, PingOptions, StartPluginOptions } from './host.js';
import type { PingResult } from './ping.js';
import type { RunResult } from './proc.js';

export { Lab, type LabBackend, type LabOptions, type DestroyOptions } from './lab.js';
export { DIND_IMAGE, DIND_NETWORK, dindImageTarball } from './dind.js';
export { LabHost, nodeFlagsOf, PingStream, SLEEPER, UNDERLAY_IF, PLUGIN_NAME } from './host.js';
export type { FdbEntry, HostSpec, NeighEntry, PingOptions, StartPluginOptions, StopResult } from './host.js';
export { BUSYBOX_IMAGE, buildBusyboxTarball } from './image.js';
export {
  DNS_TOOL, DnsPoller, dnsQuery, dnsRaw, dnsRawMany, LabDnsServer, nsNamed, nsOfPid,
  type DnsPollOptions, type DnsPollResult, type DnsQueryOptions, type DnsQueryResult, type DnsRawResult, type DnsRecord,
  type LabDnsQueryLog, type LabDnsServerOptions, type NsEnter,
} from './dns.js';
export { parsePingSummary, type PingResult, type PingSummary } from './ping.js';
export { pluginRequest, type PluginResponse } from './plugin-http.js';
export { readPluginLog, type PluginLogLine } from './plugin-log.js';
export { CommandError, run, sh, type RunResult } from './proc.js';
export { StopWaiting, timed, waitFor, WaitTimeoutError, type WaitOptions } from './wait.js';
export { ZooKeeperEnsemble, type ZooKeeperOptions } from './zookeeper.js';

/** docker CLI against a lab host; stdout, or throws with stderr. */
export function docker(host: LabHost, ...args: string[]): Promise<string> {
  return host.docker(...args);
}

/** docker CLI against a lab host; the full result, never throws on exit status. */
export function dockerTry(host: LabHost, ...args: string[]): Promise<RunResult> {
  return host.dockerTry(...args);
}

/** Run a host tool inside a container's network namespace (nsenter -t PID -n). */
export function nsExec(host: LabHost, container: string, cmd: string, ...args: string[]): Promise<RunResult> {
  return host.nsExec(container, cmd, ...args);
}

export function ping(host: LabHost, container: string, target: string, opts?: PingOptions): Promise<PingResult> {
  return host.ping(container, target, opts);
}

export function links(host: LabHost): Promise<string[]> {
  return host.links();
}

export function restartDockerd(host: LabHost): Promise<void> {
  return host.restartDockerd();
}

export function startPlugin(host: LabHost, opts?: StartPluginOptions | string[]): Promise<void> {
  return host.startPlugin(opts);
}

export {
  createOverlay, DRIVER, endpointOf, failureText, gatewayOf, hasNetwork, ifaceWithIp, inspectNet, percentile,
  assertReaches, pingFromPid, pingUntilOk, subnetOf, vxlanDevices, waitNetwork, waitNetworkGone,
  type Endpoint, type EventualPing, type NetInfo, type OverlayNet,
} from './overlay.js';
export { LabRegistry, REGISTRY_BIN, type LabRegistryOptions, type RegistryLab } from './registry.js';
export {
  buildPluginDir, CAP, findPluginProcess, hasCap, inspectPlugin, labCliEnv, PLUGIN_BUILD_SCRIPT, pluginCacheDir, pluginEnv, pluginLinesInDockerdLog,
  waitPluginProcess, type BuildPluginOptions, type BuildPluginResult, type PluginInspect, type PluginProcess,
} from './managed-plugin.js';
