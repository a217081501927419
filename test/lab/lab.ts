// The lab: an underlay "switch" namespace, N host namespaces each with its own
// dockerd, optional ZooKeeper, all on a private /24 with no default route
// anywhere, so no packet can leave the machine.
//
//   switch ns  tsl-<id>-sw : bridge br0 (mtu 9000), outside target <net>.254
//   host ns    tsl-<id>-<name> : ul0 <net>.<index+1>/24 (mtu per host) -- veth -- p-<name> in br0
//   zk ns      tsl-<id>-zk<n> : ul0 <net>.<200+n>/24
//
// Everything created is recorded in <dir>/lab.state first, so destroy() (and
// scripts/lab-sweep.sh, after a crash) can remove exactly what this lab made.
import { randomBytes } from 'node:crypto';
import { cp, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dnsQuery, dnsRaw, LabDnsServer, nsNamed, type DnsQueryOptions, type DnsQueryResult, type DnsRawResult, type LabDnsServerOptions } from './dns.js';
import { DindEngine, DindHost, DindZooKeeper, dindImageTarball, EngineHost, ENGINE_NAME } from './dind.js';
import { buildBusyboxTarball } from './image.js';
import { LabHost, type HostSpec, type LabContext, type StartPluginOptions } from './host.js';
import { debug, errorText, isSameProcessAlive, procStartTime, run, sh, type RunResult } from './proc.js';
import { StateFile } from './tracked.js';
import { ZooKeeperEnsemble, type ZooKeeperOptions } from './zookeeper.js';

/** Where lab hosts run: network namespaces (default) or containers of an outer engine (dind.ts). */
export type LabBackend = 'netns' | 'dind';

export interface LabOptions {
  hosts: HostSpec[];
  /**
   * 'netns' (default): each host a network namespace with its own dockerd.
   * 'dind': each host a container of an outer engine running its own dockerd
   * (test/lab/dind.ts). Default $TSL_BACKEND, else 'netns'.
   */
  backend?: LabBackend;
  /** Start ZooKeeper on the underlay (default: no). */
  zookeeper?: false | true | ZooKeeperOptions;
  /** Import busybox:local into every host (default: yes). */
  image?: boolean;
  /** dockerd --storage-driver (default $TSL_STORAGE_DRIVER or overlay2). */
  storageDriver?: string;
  dockerdLogLevel?: string;
  /** Path of the plugin's cli.js (default $TSOVERLAY_CLI or <repo>/dist/cli.js). */
  pluginCli?: string;
  /** Parent directory for the lab's files (default $TSL_BASE_DIR or /tmp). */
  baseDir?: string;
  /**
   * Defaults for every host's startPlugin() (a call's own options win; args
   * are appended). E.g. `{ store: 'zk', zkSessionTimeoutMs: 4000 }` for a
   * cluster on the lab's ZooKeeper.
   */
  plugin?: StartPluginOptions;
  /**
   * dockerd --dns servers of every host (a host's own HostSpec.dockerDns
   * wins). Default: the lab's outside address, so no container query ever
   * reaches the machine's resolver.
   */
  dockerDns?: string[];
  /**
   * Start the lab's DNS server (LabDnsServer: A records for a few names,
   * NXDOMAIN otherwise) on the outside address in the switch namespace while
   * building; `plugin: { dnsUpstream: 'lab' }` then points plugins at it.
   * Default: no (see also startDnsServer()).
   */
  dnsServer?: boolean | LabDnsServerOptions;
}

export interface DestroyOptions {
  /** Copy every log of the lab into this directory before deleting it. */
  keepLogsIn?: string;
}

const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const SWITCH_MTU = 9000;
const HOST_NAME = /^[a-z][a-z0-9]{0,7}$/;

const liveLabs = new Set<Lab>();
let signalsInstalled = false;

function installSignalHandlers(): void {
  if (signalsInstalled) return;
  signalsInstalled = true;
  let handling = false;
  const onSignal = (sig: NodeJS.Signals, code: number) => {
    if (handling) return;
    handling = true;
    process.stderr.write(`\n[lab] ${sig}: tearing down ${liveLabs.size} lab(s)...\n`);
    const all = [...liveLabs].map((l) => l.destroy().catch((e: unknown) => {
      process.stderr.write(`[lab] teardown of ${l.id} failed: ${errorText(e)}\n`);
    }));
    void Promise.all(all).finally(() => process.exit(code));
  };
  process.on('SIGINT', () => onSignal('SIGINT', 130));
  process.on('SIGTERM', () => onSignal('SIGTERM', 143));
  process.on('SIGHUP', () => onSignal('SIGHUP', 129));
}

export class Lab {
  readonly id: string;
  readonly dir: string;
  readonly backend: LabBackend;
  readonly state: StateFile;
  readonly switchNs: string;
  readonly switchBridge = 'br0';
  /** First three octets of the underlay /24, e.g. "172.31.17". */
  readonly net: string;
  readonly subnet: string;
  readonly prefixLen = 24;
  /** An address outside every host (on the switch): "a way out" reaches it through NAT. */
  readonly outsideIp: string;
  readonly hosts: LabHost[] = [];
  zk: ZooKeeperEnsemble | undefined;
  /** The lab's DNS server, while it runs (startDnsServer / LabOptions.dnsServer). */
  dnsServer: LabDnsServer | undefined;
  private readonly ctx: LabContext;
  private readonly netnsCreated: string[] = [];
  private destroying: Promise<void> | undefined;
  private imageTar: Promise<string> | undefined;
  /** The outer engine of a dind lab. */
  private engine: DindEngine | undefined;

  private constructor(id: string, dir: string, opts: LabOptions) {
    this.id = id;
    this.dir = dir;
    this.state = new StateFile(join(dir, 'lab.state'));
    this.backend = opts.backend ?? labBackend(process.env['TSL_BACKEND']);
    // dind: the outer engine's namespace holds the underlay bridge
    this.switchNs = this.backend === 'dind' ? `tsl-${id}-${ENGINE_NAME}` : `tsl-${id}-sw`;
    const octet = 1 + (randomBytes(1)[0] ?? 0) % 254;
    this.net = `172.31.${octet}`;
    this.subnet = `${this.net}.0/24`;
    this.outsideIp = `${this.net}.254`;
    this.ctx = {
      id,
      dir,
      state: this.state,
      outsideIp: this.outsideIp,
      prefixLen: this.prefixLen,
      storageDriver: opts.storageDriver ?? process.env['TSL_STORAGE_DRIVER'] ?? 'overlay2',
      dockerdLogLevel: opts.dockerdLogLevel ?? 'info',
      pluginCli: opts.pluginCli ?? process.env['TSOVERLAY_CLI'] ?? join(repoRoot, 'dist', 'cli.js'),
      ...(opts.plugin ? { pluginDefaults: opts.plugin } : {}),
      zkStore: () => this.zkStore,
      ...(opts.dockerDns ? { dockerDns: opts.dockerDns } : {}),
      labDns: () => (this.dnsServer?.running ? this.dnsServer.address : undefined),
    };
  }

  /** Build a lab; on any failure everything built so far is torn down and the error rethrown. */
  static async create(opts: LabOptions): Promise<Lab> {
    if (process.getuid?.() !== 0) throw new Error('the lab needs root (network namespaces, dockerd)');
    if (opts.hosts.length === 0) throw new Error('a lab needs at least one host');
    const names = new Set<string>();
    for (const h of opts.hosts) {
      if (!HOST_NAME.test(h.name)) throw new Error(`bad host name ${JSON.stringify(h.name)}: use [a-z][a-z0-9]{0,7}`);
      if (names.has(h.name)) throw new Error(`duplicate host name ${h.name}`);
      names.add(h.name);
      if (h.mtu !== undefined && (h.mtu < 1280 || h.mtu > SWITCH_MTU)) throw new Error(`host ${h.name}: mtu ${h.mtu} out of range`);
    }
    if (opts.hosts.length > 150) throw new Error('at most 150 hosts');
    if (opts.hosts.some((h) => h.name === ENGINE_NAME)) throw new Error(`host name ${ENGINE_NAME} is taken by the dind backend's outer engine`);
    const base = opts.baseDir ?? process.env['TSL_BASE_DIR'] ?? '/tmp';
    let id = '';
    let dir = '';
    for (let i = 0; ; i++) {
      id = randomBytes(3).toString('hex');
      dir = join(base, `tsl-${id}`);
      try {
        await mkdir(dir, { recursive: false, mode: 0o755 });
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || i > 20) throw e;
      }
    }
    const lab = new Lab(id, dir, opts);
    liveLabs.add(lab);
    installSignalHandlers();
    try {
      lab.state.append(`owner ${process.pid} ${(await procStartTime(process.pid)) ?? '0'}`);
      lab.state.append(`dir ${dir}`);
      await lab.build(opts);
    } catch (e) {
      await lab.destroy().catch((e2: unknown) => {
        process.stderr.write(`[lab] teardown after failed create also failed: ${errorText(e2)}\n`);
      });
      throw e;
    }
    return lab;
  }

  private async addNetns(name: string): Promise<void> {
    this.state.append(`netns ${name}`); // recorded before it exists: a crash in between leaves nothing unknown
    await sh('ip', ['netns', 'add', name]);
    this.netnsCreated.push(name);
    await sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  }

  /** A namespace with ul0 plugged into the switch. */
  private async plug(ns: string, port: string, ip: string, mtu: number): Promise<void> {
    await sh('ip', ['link', 'add', 'ul0', 'netns', ns, 'mtu', String(mtu), 'type', 'veth',
      'peer', 'name', port, 'netns', this.switchNs, 'mtu', String(SWITCH_MTU)]);
    await sh('ip', ['-n', this.switchNs, 'link', 'set', port, 'master', this.switchBridge, 'up']);
    await sh('ip', ['-n', ns, 'addr', 'add', `${ip}/${this.prefixLen}`, 'dev', 'ul0']);
    await sh('ip', ['-n', ns, 'link', 'set', 'ul0', 'up']);
  }

  private async build(opts: LabOptions): Promise<void> {
    await mkdir(join(this.dir, 'docker-cli'), { recursive: true });
    if (this.backend === 'dind') return this.buildDind(opts);
    // the switch
    await this.addNetns(this.switchNs);
    await sh('ip', ['-n', this.switchNs, 'link', 'add', this.switchBridge, 'type', 'bridge']);
    await sh('ip', ['-n', this.switchNs, 'link', 'set', this.switchBridge, 'mtu', String(SWITCH_MTU), 'up']);
    await sh('ip', ['-n', this.switchNs, 'addr', 'add', `${this.outsideIp}/${this.prefixLen}`, 'dev', this.switchBridge]);
    if (opts.dnsServer) await this.startDnsServer(opts.dnsServer === true ? {} : opts.dnsServer);
    // hosts
    opts.hosts.forEach((spec, i) => this.hosts.push(new LabHost(this.ctx, spec, i, `${this.net}.${i + 1}`)));
    for (const h of this.hosts) {
      await this.addNetns(h.ns);
      await mkdir(h.dir, { recursive: true });
      await this.plug(h.ns, `p-${h.name}`, h.ip, h.mtu);
    }
    // ZooKeeper
    if (opts.zookeeper) {
      const zo = opts.zookeeper === true ? {} : opts.zookeeper;
      const n = zo.servers ?? 1;
      const ips = Array.from({ length: n }, (_, i) => `${this.net}.${201 + i}`);
      this.zk = new ZooKeeperEnsemble(this.id, this.dir, this.state, ips, zo);
      for (const s of this.zk.servers) {
        await this.addNetns(s.ns);
        await mkdir(s.dir, { recursive: true });
        await this.plug(s.ns, `p-zk${s.id}`, s.ip, SWITCH_MTU);
      }
    }
    // engines (in parallel), image, ZooKeeper
    const wantImage = opts.image ?? true;
    if (wantImage) this.imageTar = buildBusyboxTarball(this.dir);
    const zkUp = this.zk ? (async () => {
      for (const s of this.zk!.servers) await this.zk!.startServer(s.id);
      await this.zk!.waitReady();
    })() : Promise.resolve();
    const enginesUp = Promise.all(this.hosts.map(async (h) => {
      await h.startDockerd();
      if (this.imageTar) await h.importImage(await this.imageTar);
    }));
    const results = await Promise.allSettled([enginesUp, zkUp]);
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }

  /**
   * The dind backend (dind.ts): the outer engine in its own namespace, its
   * internal network as the switch, a node container per host, ZooKeeper
   * containers; then the engines inside the nodes, as build() does.
   */
  private async buildDind(opts: LabOptions): Promise<void> {
    const engine = new EngineHost(this.ctx, { name: ENGINE_NAME }, -1, this.outsideIp);
    this.engine = new DindEngine(engine, this.ctx, this.net);
    await this.addNetns(engine.ns);
    await mkdir(engine.dir, { recursive: true });
    const nodeTar = dindImageTarball(); // cached; a cold build takes about a minute and a half
    if (opts.image ?? true) this.imageTar = buildBusyboxTarball(this.dir);
    await engine.startDockerd();
    debug(`lab ${this.id}: outer engine up`);
    await this.engine.prepare(await nodeTar);
    debug(`lab ${this.id}: node image imported, network ${this.subnet} created`);
    if (opts.dnsServer) await this.startDnsServer(opts.dnsServer === true ? {} : opts.dnsServer);
    opts.hosts.forEach((spec, i) => this.hosts.push(new DindHost(this.ctx, spec, i, `${this.net}.${i + 1}`, engine)));
    if (opts.zookeeper) {
      const zo = opts.zookeeper === true ? {} : opts.zookeeper;
      const ips = Array.from({ length: zo.servers ?? 1 }, (_, i) => `${this.net}.${201 + i}`);
      this.zk = new DindZooKeeper(engine, this.id, this.dir, this.state, ips, zo);
    }
    const zkUp = this.zk ? (async () => {
      for (const s of this.zk!.servers) await this.zk!.startServer(s.id);
      await this.zk!.waitReady();
    })() : Promise.resolve();
    const enginesUp = Promise.all(this.hosts.map(async (h) => {
      await mkdir(h.dir, { recursive: true });
      await this.engine!.runNode(h as DindHost);
      await h.startDockerd();
      if (this.imageTar) await h.importImage(await this.imageTar);
      debug(`lab ${this.id}: node ${h.name} up`);
    }));
    const results = await Promise.allSettled([enginesUp, zkUp]);
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }

  /**
   * The plugin's --store for this lab's ZooKeeper: every server, and a chroot
   * unique to this lab run (/tsoverlay-<id>). Undefined without ZooKeeper.
   */
  get zkStore(): string | undefined {
    return this.zk ? `zk://${this.zk.connectString}${this.zkChroot}` : undefined;
  }

  /**
   * A bare ZooKeeper client (test/lab/tools/zk-raw.mjs) run in the first
   * server's namespace, for fault injection: `create` (or overwrite) a znode
   * with any data, `get`, `children`, `rmr`. Paths are absolute (no chroot):
   * the plugins' tree is under `/tsoverlay-<lab id>` (zkChroot).
   */
  async zkRaw(op: 'create' | 'get' | 'children' | 'rmr', path: string, data?: string): Promise<RunResult> {
    if (!this.zk) throw new Error(`lab ${this.id}: zkRaw needs a ZooKeeper`);
    const ns = this.zk.servers[0]?.ns;
    if (!ns) throw new Error(`lab ${this.id}: no ZooKeeper server`);
    const tool = fileURLToPath(new URL('./tools/zk-raw.mjs', import.meta.url));
    return run('nsenter', [`--net=/run/netns/${ns}`, '--', process.execPath, tool, this.zk.rawConnectString, op, path, ...(data === undefined ? [] : [data])],
      { timeoutMs: 30_000 });
  }

  /** The chroot of the plugins' tree in this lab's ZooKeeper (see zkStore). */
  get zkChroot(): string {
    return `/tsoverlay-${this.id}`;
  }

  /**
   * Cut a host (or a ZooKeeper server: 'zk1', ...) off the underlay by setting
   * its switch port down; its ul0 loses carrier. reconnect() undoes it.
   */
  async disconnect(who: LabHost | string): Promise<void> {
    await sh('ip', ['-n', this.switchNs, 'link', 'set', await this.switchPort(who), 'down']);
  }

  async reconnect(who: LabHost | string): Promise<void> {
    await sh('ip', ['-n', this.switchNs, 'link', 'set', await this.switchPort(who), 'up']);
  }

  /** True while the host's (or ZooKeeper server's) switch port is up. */
  async isConnected(who: LabHost | string): Promise<boolean> {
    const out = await sh('ip', ['-n', this.switchNs, '-o', 'link', 'show', await this.switchPort(who)]);
    return /[<,]UP[,>]/.test(out);
  }

  private async switchPort(who: LabHost | string): Promise<string> {
    const name = typeof who === 'string' ? who : who.name;
    if (/^zk\d+$/.test(name)) {
      if (!this.zk?.servers.some((s) => `zk${s.id}` === name)) throw new Error(`no ZooKeeper server ${name} in lab ${this.id}`);
      // dind: the ZooKeeper container's veth is new after each restart
      return this.engine ? this.engine.switchPort(name) : `p-${name}`;
    }
    const h = this.host(name);
    return this.engine ? this.engine.switchPort(h as DindHost) : `p-${h.name}`;
  }

  host(name: string): LabHost {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no host ${name} in lab ${this.id}`);
    return h;
  }

  /** Run a command in the switch namespace (where the outside target lives). */
  switchExec(cmd: string, ...args: string[]) {
    return run('nsenter', [`--net=/run/netns/${this.switchNs}`, '--', cmd, ...args], { timeoutMs: 60_000 });
  }

  /**
   * Start the lab's DNS server on the outside address (switch namespace),
   * UDP and TCP: A records for `records` (default outside.example ->
   * 203.0.113.7), NXDOMAIN for anything else, every query logged to
   * <dir>/dns-server.log (`dnsServer.queries()`). Stopped by destroy().
   */
  async startDnsServer(opts: LabDnsServerOptions = {}): Promise<LabDnsServer> {
    if (this.dnsServer?.running) throw new Error(`lab ${this.id}: dns server already running (pid ${this.dnsServer.proc.pid})`);
    this.dnsServer = await LabDnsServer.start(this.switchNs, this.outsideIp, {
      ...opts, state: this.state, logPath: join(this.dir, 'dns-server.log'), label: `dns-server-${this.id}`,
    });
    return this.dnsServer;
  }

  /** One DNS query from the switch namespace (the "outside") to `server`. */
  switchDnsQuery(server: string, name: string, opts?: DnsQueryOptions): Promise<DnsQueryResult> {
    return dnsQuery(nsNamed(this.switchNs), server, name, opts);
  }

  /** Raw bytes from the switch namespace to `server`; the first reply, if any. */
  switchDnsRaw(server: string, bytes: Buffer, opts?: { timeoutMs?: number; tcp?: boolean }): Promise<DnsRawResult> {
    return dnsRaw(nsNamed(this.switchNs), server, bytes, opts);
  }

  /** Import the busybox image into a host again (e.g. after wiping its data root). */
  async importImage(h: LabHost): Promise<void> {
    this.imageTar ??= buildBusyboxTarball(this.dir);
    await h.importImage(await this.imageTar);
  }

  /**
   * Tear everything down, in order: containers, dockerd (waiting for it),
   * probes, plugins, ZooKeeper, leftover mounts under the lab dir, namespaces,
   * files. Idempotent; safe after a half-built lab. Rejects (after doing all
   * it can) if something could not be cleaned.
   */
  destroy(opts: DestroyOptions = {}): Promise<void> {
    this.destroying ??= this.doDestroy(opts).finally(() => liveLabs.delete(this));
    return this.destroying;
  }

  private async doDestroy(opts: DestroyOptions): Promise<void> {
    const errors: string[] = [];
    debug(`lab ${this.id}: destroy`);
    await Promise.all(this.hosts.map((h) => h.shutdown(errors)));
    if (this.dnsServer?.running) {
      const r = await this.dnsServer.stop();
      if (r.killed) errors.push('lab dns server ignored SIGTERM and was killed');
    }
    if (this.zk) errors.push(...(await this.zk.stopAll()));
    // dind: the node and ZooKeeper containers go with the outer engine
    if (this.engine) await this.engine.host.shutdown(errors);
    // anything recorded still alive (e.g. recorded by a previous owner of this object) gets killed
    for (const line of (await readFile(this.state.path, 'utf8').catch(() => '')).split('\n')) {
      const m = /^pid (\d+) (\d+) \d+ (\S+)/.exec(line);
      if (m && (await isSameProcessAlive(Number(m[1]), m[2]!))) {
        errors.push(`recorded process ${m[3]} (pid ${m[1]}) still alive at teardown: killed`);
        try { process.kill(Number(m[1]), 'SIGKILL'); } catch { /* gone */ }
      }
    }
    // mounts under our directory (normally none: dockerd's live in its private mount namespace)
    try {
      const mounts = await mountsUnder(this.dir);
      for (const m of mounts) {
        const r = await run('umount', [m]);
        if (r.code !== 0) {
          const r2 = await run('umount', ['-l', m]);
          if (r2.code !== 0) errors.push(`cannot unmount ${m}: ${r2.stderr.trim()}`);
        }
      }
    } catch (e) {
      errors.push(`scanning mounts: ${errorText(e)}`);
    }
    // namespaces (all devices in them go too)
    const recorded = (await readFile(this.state.path, 'utf8').catch(() => ''))
      .split('\n').map((l) => /^netns (\S+)$/.exec(l)?.[1]).filter((x): x is string => Boolean(x));
    for (const ns of new Set([...this.netnsCreated, ...recorded])) {
      const pids = await run('ip', ['netns', 'pids', ns]);
      if (pids.code === 0 && pids.stdout.trim()) {
        errors.push(`processes still in netns ${ns}: ${pids.stdout.trim().split('\n').join(' ')}`);
      }
      const r = await run('ip', ['netns', 'del', ns]);
      if (r.code !== 0 && !/No such file/.test(r.stderr)) errors.push(`ip netns del ${ns}: ${r.stderr.trim()}`);
    }
    if (opts.keepLogsIn) {
      try {
        await copyLogs(this.dir, join(opts.keepLogsIn, `tsl-${this.id}`));
      } catch (e) {
        errors.push(`copying logs: ${errorText(e)}`);
      }
    }
    try {
      await rm(this.dir, { recursive: true, force: true, maxRetries: 3 });
    } catch (e) {
      errors.push(`rm ${this.dir}: ${errorText(e)}`);
    }
    debug(`lab ${this.id}: destroyed`);
    if (errors.length) throw new Error(`lab ${this.id} teardown problems:\n  ${errors.join('\n  ')}`);
  }
}

async function mountsUnder(dir: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const points = text.split('\n').map((l) => l.split(' ')[4]).filter((p): p is string => Boolean(p))
    .map((p) => p.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === dir || p.startsWith(prefix));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

async function copyLogs(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.isDirectory()) {
        if (['data', 'exec', 'busybox-root', 'plugins', 'docker-cli'].includes(e.name)) continue;
        await walk(join(d, e.name), join(rel, e.name));
      } else if (e.isFile() && /\.(log|json|state|cfg)$/.test(e.name)) {
        await mkdir(join(to, rel), { recursive: true });
        await cp(join(d, e.name), join(to, rel, e.name));
      }
    }
  };
  await walk(from, '');
}

function labBackend(v: string | undefined): LabBackend {
  if (v === undefined || v === '' || v === 'netns') return 'netns';
  if (v === 'dind') return 'dind';
  throw new Error(`TSL_BACKEND=${v}: expected netns or dind`);
}
