// The lab's docker-in-docker backend (LabOptions.backend 'dind', or
// TSL_BACKEND=dind): every lab host is a container running its own dockerd,
// ZooKeeper runs in another container, all on one user-defined --internal
// network of an outer engine. The outer engine is an ordinary lab host
// (network namespace + dockerd, see host.ts) named "engine", so the usual
// teardown and scripts/lab-sweep.sh clean it up.
//
//   engine ns  tsl-<id>-engine : the outer dockerd; its network "tsl-underlay"
//              (--internal, bridge br0, <net>.0/24, gateway <net>.254 = the
//              lab's outside address) plays the netns lab's switch
//   node       container h<i> : image tsl-node:local (scripts/dind-image.sh),
//              ul0 = <net>.<i+1>, hostname tsl-<id>-<name>, --pid host
//   zk<n>      container : the image's ZooKeeper, <net>.<200+n>
//
// The existing LabHost code keeps working unchanged because a node looks like
// a netns-lab host from the machine's side:
//   * its network namespace is attached by name (`ip netns attach
//     tsl-<id>-<name> PID`, recorded in lab.state), so `ip -n`, `bridge -n`
//     and `nsenter --net=/run/netns/...` reach it;
//   * the host directory is bind-mounted at the same path and its plugins/
//     over /run/docker/plugins, so the docker socket, the plugin socket and
//     the logs have the same paths inside and out;
//   * the node shares the machine's PID namespace (--pid host), so the pids
//     its dockerd reports (docker inspect) are the machine's: `nsenter -t PID`
//     works, and the pidfile/containerd.pid checks hold.
// The node's dockerd is started by us with nsenter into the node container's
// mount, UTS, IPC and network namespaces and its root (so it runs the image's
// dockerd, runc and iptables): it is our child, recorded and stopped like a
// netns host's dockerd, and restarting it leaves the node's network namespace
// in place, as restarting the engine of a real machine would. The tsoverlay
// plugin runs like on a netns host: node dist/cli.js in the node's network
// namespace, from the machine's files (see README "docker-in-docker").
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mkdir, writeFile } from 'node:fs/promises';
import { LabHost, type HostSpec, type LabContext } from './host.js';
import { run, sh } from './proc.js';
import { Rank } from './tracked.js';
import { ZK_PACKAGE_CLASSPATH, zkJavaArgs } from './zk-java.js';
import { ZooKeeperEnsemble } from './zookeeper.js';

export const DIND_IMAGE = 'tsl-node:local';
export const DIND_NETWORK = 'tsl-underlay';
/** The outer engine's host name (and netns suffix); no lab host may take it. */
export const ENGINE_NAME = 'engine';

const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const DIND_IMAGE_SCRIPT = resolve(repoRoot, 'scripts/dind-image.sh');

/**
 * What multi-host-lab.md found to work for a container running dockerd in
 * place of --privileged (which fails on these machines: their capability
 * bounding set lacks CAP_SYS_RESOURCE).
 */
const NODE_SECURITY = [
  '--cap-add', 'ALL', '--cap-drop', 'SYS_RESOURCE',
  '--security-opt', 'seccomp=unconfined', '--security-opt', 'apparmor=unconfined',
  '--security-opt', 'systempaths=unconfined',
  '-v', '/sys/fs/cgroup:/sys/fs/cgroup:rw', '--device-cgroup-rule', 'a *:* rwm',
];

/** A container's main process that does nothing and exits at once on SIGTERM. */
const IDLE = ['sh', '-c', 'trap "exit 0" TERM INT; sleep infinity & wait'];

let imageTar: Promise<string> | undefined;

/**
 * The node image's tarball: scripts/dind-image.sh builds it on the first run
 * (about a minute and a half) and prints the cached path on later ones.
 */
export function dindImageTarball(): Promise<string> {
  imageTar ??= sh('bash', [DIND_IMAGE_SCRIPT], { timeoutMs: 15 * 60_000 }).then((out) => {
    const path = out.trim().split('\n').pop();
    if (!path) throw new Error(`${DIND_IMAGE_SCRIPT} printed no tarball path`);
    return path;
  });
  imageTar.catch(() => { imageTar = undefined; });
  return imageTar;
}

/**
 * The outer engine: an ordinary lab host whose dockerd (then its containerd)
 * the sweep stops after the engines inside its containers.
 */
export class EngineHost extends LabHost {
  protected override readonly dockerdRank: Rank = Rank.Engine;
  protected override readonly containerdRank: Rank = Rank.Engine;
}

/** The interface index of ul0's veth peer, as `ip -o link` prints it in the given namespace ("ul0@if12"). */
async function ul0PeerIndex(nsenter: string[]): Promise<string> {
  const out = await sh('nsenter', [...nsenter, '--', 'ip', '-o', 'link', 'show', 'ul0']);
  const idx = /^\d+:\s+ul0@if(\d+):/.exec(out.trim())?.[1];
  if (!idx) throw new Error(`cannot find ul0's peer in: ${out.trim()}`);
  return idx;
}

export class DindEngine {
  constructor(readonly host: EngineHost, private readonly ctx: LabContext, private readonly net: string) {}

  /** Import the node image and create the internal underlay network. */
  async prepare(nodeTar: string): Promise<void> {
    await this.host.docker('import', nodeTar, DIND_IMAGE);
    // --internal: no NAT and no route out of it; the gateway address is the
    // bridge's own address in the engine namespace (the lab's outside address).
    // MTU 9000 like the netns switch; each node sets its own ul0 MTU.
    await this.host.docker('network', 'create', '--internal',
      '--subnet', `${this.net}.0/24`, '--gateway', this.ctx.outsideIp,
      '-o', 'com.docker.network.bridge.name=br0',
      '-o', 'com.docker.network.driver.mtu=9000',
      // containers' interfaces on it are ul0 (ul<n>), as on netns hosts
      '-o', 'com.docker.network.container_iface_prefix=ul',
      DIND_NETWORK);
  }

  /** Run the node container of a host and attach its network namespace by the host's netns name. */
  async runNode(h: DindHost): Promise<void> {
    await mkdir(h.pluginsDir, { recursive: true });
    await this.host.docker('run', '-d', '--name', h.name, '--hostname', h.hostname,
      '--net', DIND_NETWORK, '--ip', h.ip, '--pid', 'host', ...NODE_SECURITY,
      '-v', `${h.dir}:${h.dir}`, '-v', `${h.pluginsDir}:/run/docker/plugins`,
      DIND_IMAGE, ...IDLE);
    const pid = await this.host.containerPid(h.name);
    this.ctx.state.append(`netns ${h.ns}`); // recorded first: the teardown and the sweep delete it
    await sh('ip', ['netns', 'attach', h.ns, String(pid)]);
    await sh('ip', ['-n', h.ns, 'link', 'set', 'ul0', 'mtu', String(h.mtu)]);
  }

  /** The engine-side veth of a node's (or ZooKeeper container's) ul0: the "switch port". */
  async switchPort(who: DindHost | string): Promise<string> {
    const nsenter = typeof who === 'string'
      ? ['-t', String(await this.host.containerPid(who)), '-n']
      : [`--net=/run/netns/${who.ns}`];
    const idx = await ul0PeerIndex(nsenter);
    const out = await sh('ip', ['-n', this.host.ns, '-o', 'link', 'show']);
    const name = new RegExp(`^${idx}:\\s+([^:@\\s]+)`, 'm').exec(out)?.[1];
    if (!name) throw new Error(`no interface ${idx} in ${this.host.ns} (peer of ${String(who)}'s ul0)`);
    return name;
  }
}

/** A lab host that is a container of the outer engine, with its own dockerd. */
export class DindHost extends LabHost {
  constructor(ctx: LabContext, spec: HostSpec, index: number, ip: string, private readonly engine: EngineHost) {
    super(ctx, spec, index, ip);
  }

  override toString(): string {
    return `dind host ${this.name} (${this.ns}, ${this.ip}, mtu ${this.mtu})`;
  }

  /** dockerd in the node container's namespaces and root, but the machine's pid namespace (the node shares it). */
  protected override async dockerdNsenterArgs(dockerdArgs: string[]): Promise<string[]> {
    if (this.hostResolvers) throw new Error(`${this}: HostSpec.hostResolvers is for netns hosts only`);
    const pid = await this.engine.containerPid(this.name);
    return ['-t', String(pid), '-m', '-u', '-i', '-n', '-r', '-w', '--', 'dockerd', ...dockerdArgs];
  }
}

/**
 * ZooKeeper servers as containers of the outer engine (the node image holds
 * Debian's zookeeper). Stop, start and kill act on the container; the server
 * keeps its data directory (bind-mounted from the lab dir) across them.
 */
export class DindZooKeeper extends ZooKeeperEnsemble {
  private readonly running = new Set<number>();

  constructor(private readonly engine: EngineHost, ...args: ConstructorParameters<typeof ZooKeeperEnsemble>) {
    super(...args);
  }

  private container(id: number): string {
    return `zk${this.server(id).id}`;
  }

  override async startServer(id: number): Promise<void> {
    const s = this.server(id);
    if (this.isRunning(id)) throw new Error(`zk${id} already running`);
    const cfg = await this.writeConfig(s);
    await writeFile(s.log, `---- zookeeper start ${new Date().toISOString()}\n`, { flag: 'a' });
    await this.engine.dockerTry('rm', '-f', this.container(id)); // the stopped one of an earlier start
    // the image has the same Debian packages as this machine (scripts/dind-image.sh)
    const java = `exec java ${zkJavaArgs(cfg, s.dir, ZK_PACKAGE_CLASSPATH).join(' ')} >>${s.log} 2>&1`;
    await this.engine.docker('run', '-d', '--name', this.container(id), '--hostname', `tsl-${this.labId}-zk${s.id}`,
      '--net', DIND_NETWORK, '--ip', s.ip, '-v', `${s.dir}:${s.dir}`, DIND_IMAGE, 'sh', '-c', java);
    this.running.add(id);
  }

  override async stopServer(id: number): Promise<void> {
    if (!this.isRunning(id)) return;
    await this.engine.docker('stop', '-t', '15', this.container(id));
    this.running.delete(id);
  }

  override async killServer(id: number): Promise<void> {
    if (!this.isRunning(id)) return;
    await this.engine.docker('kill', '-s', 'KILL', this.container(id));
    this.running.delete(id);
  }

  override isRunning(id: number): boolean {
    this.server(id);
    return this.running.has(id);
  }

  /** From the engine namespace (the switch), over the underlay. */
  override async fourLetter(id: number, word: string): Promise<string> {
    const s = this.server(id);
    const r = await run('nsenter', [`--net=/run/netns/${this.engine.ns}`, '--', 'busybox', 'nc', '-w', '2', s.ip, String(this.clientPort)],
      { input: word, timeoutMs: 5000 });
    return r.stdout;
  }

  override async stopAll(): Promise<string[]> {
    const errors: string[] = [];
    for (const s of this.servers) {
      await this.stopServer(s.id).catch((e: unknown) => errors.push(`stopping zk${s.id}: ${String(e)}`));
    }
    return errors;
  }
}
