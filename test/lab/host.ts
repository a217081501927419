// One lab "host": a network namespace on the lab's underlay switch, its own
// dockerd (private mount + UTS namespace, per-host plugin directory bind-mounted
// over /run/docker/plugins -- see shared/docs/multi-host-lab.md) and, on demand,
// a tsoverlay plugin process running in the same network namespace.
import { existsSync } from 'node:fs';
import { mkdir, readFile, readlink, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DnsPoller, dnsQuery, dnsRaw, dnsRawMany, nsOfPid, type DnsPollOptions, type DnsQueryOptions, type DnsQueryResult, type DnsRawResult } from './dns.js';
import { BUSYBOX_IMAGE } from './image.js';
import { LINE_TIMESTAMP, parsePingSummary, pingResult, REPLY_LINE, type PingResult } from './ping.js';
import { pluginRequest, type PluginRequestOptions, type PluginResponse } from './plugin-http.js';
import { CommandError, debug, errorText, isSameProcessAlive, procStartTime, run, sh, tailFile, type RunResult } from './proc.js';
import { Rank, StateFile, TrackedProcess, type ExitInfo } from './tracked.js';
import { StopWaiting, waitFor } from './wait.js';

export const UNDERLAY_IF = 'ul0';

/**
 * The node flags in the CLI's shebang (`#!/usr/bin/env -S node --flag ...`):
 * the plugin runs with the flags `tsoverlay serve` and the managed plugin
 * use, not bare `node`.
 */
export const nodeFlagsOf = async (cli: string): Promise<string[]> => {
  const first = (await readFile(cli, 'utf8').catch(() => '')).split('\n', 1)[0] ?? '';
  const m = /^#!\S*env -S node((?: --[\w-]+(?:=\S+)?)*)\s*$/.exec(first);
  return m?.[1] ? m[1].trim().split(/\s+/) : [];
};
export const PLUGIN_NAME = 'tsoverlay';

/** A container command that exits at once on SIGTERM (busybox sleep as pid 1 would ignore it and cost 10 s per stop). */
export const SLEEPER = ['sh', '-c', 'trap "exit 0" TERM INT; sleep 86400 & wait'];

export interface HostSpec {
  /** short name, [a-z][a-z0-9]{0,7} */
  name: string;
  /** underlay MTU (default 1500) */
  mtu?: number;
  /** dockerd --dns servers of this host (default LabOptions.dockerDns, else the lab's outside address) */
  dockerDns?: string[];
  /**
   * Instead of --dns: the nameservers of the /etc/resolv.conf this host's
   * dockerd reads (a file in the host's dir, bind-mounted over /etc/resolv.conf
   * in dockerd's private mount namespace), e.g. ['127.0.0.54'] for a resolver
   * on the host's loopback as systemd-resolved would be. Lab addresses only:
   * the lab guarantees no query leaves it. netns hosts only.
   */
  hostResolvers?: string[];
}

/** What a host needs to know about its lab. */
export interface LabContext {
  id: string;
  dir: string;
  state: StateFile;
  outsideIp: string;
  prefixLen: number;
  storageDriver: string;
  dockerdLogLevel: string;
  pluginCli: string;
  /** Defaults merged under every startPlugin() of this lab's hosts (LabOptions.plugin). */
  pluginDefaults?: StartPluginOptions;
  /** The lab's ZooKeeper store URL (zk://servers/chroot), if the lab runs ZooKeeper. */
  zkStore?: () => string | undefined;
  /** dockerd --dns servers for hosts without their own (default: [outsideIp]). */
  dockerDns?: string[];
  /** The lab DNS server's address (ip or ip:port) while it runs. */
  labDns?: () => string | undefined;
}

export interface StartPluginOptions {
  /** extra CLI arguments after the standard ones */
  args?: string[];
  /**
   * --store value (default file://<hostdir>/state.json). 'zk': the lab's
   * ZooKeeper with a chroot unique to this lab run (Lab.zkStore).
   */
  store?: string;
  /** --zk-session-timeout-ms */
  zkSessionTimeoutMs?: number;
  /** --resync-interval-ms */
  resyncIntervalMs?: number;
  /** --peer-grace-ms (how long peers keep a lost node's entries after its session ended) */
  peerGraceMs?: number;
  /**
   * --dns-upstream value ("ip[:port],..."). 'lab': the lab's own DNS server
   * (Lab.startDnsServer / LabOptions.dnsServer), which must be running.
   */
  dnsUpstream?: string;
  /** --dns-address value (e.g. "off") */
  dnsAddress?: string;
  /** --advertise value (default the underlay interface name) */
  advertise?: string;
  logLevel?: string;
  /**
   * --node-name (default: the host's hostname; the plugin runs in the root UTS
   * namespace, whose hostname every lab host shares). null: don't pass it.
   */
  nodeName?: string | null;
  /** --docker-host (default: this host's dockerd socket). null: don't pass it. */
  dockerHost?: string | null;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /**
   * Wait until GET /ready answers 200 (default). false: until it answers at
   * all (a plugin that refuses its store serves, but reports 503).
   */
  ready?: boolean;
}

export interface FdbEntry {
  mac: string;
  dev: string;
  dst: string | undefined;
  line: string;
}

export interface NeighEntry {
  ip: string;
  dev: string;
  mac: string | undefined;
  /** last word of the line, e.g. PERMANENT */
  state: string;
  line: string;
}

export interface StopResult extends ExitInfo {
  killed: boolean;
  elapsedMs: number;
}

export interface PingOptions {
  count?: number;
  /** seconds between packets (iputils -i) */
  interval?: number;
  /** seconds to wait for each reply */
  timeout?: number;
  /** ICMP payload size */
  size?: number;
  /** set DF (iputils -M do) */
  dontFragment?: boolean;
  /**
   * Run busybox ping inside the container with `docker exec` instead of the
   * host's iputils ping in the container's netns. Needed to resolve names
   * through Docker's embedded DNS (the container's /etc/resolv.conf).
   */
  viaDockerExec?: boolean;
}

export class PingStream {
  output = '';
  replies = 0;
  /** Sequence numbers of the replies, in arrival order. */
  readonly replySeqs: number[] = [];
  /** When the first reply came (ms since the epoch): ping's own -D timestamp if given, else when we read it. */
  firstReplyAt: number | undefined;
  private waiters: Array<() => void> = [];
  constructor(readonly proc: TrackedProcess, readonly what: string) {
    let partial = '';
    proc.child.stdout?.on('data', (b: Buffer) => {
      const s = b.toString();
      this.output += s;
      partial += s;
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        const m = REPLY_LINE.exec(line);
        if (m) {
          this.replies++;
          this.replySeqs.push(Number(m[1]));
          if (this.firstReplyAt === undefined) {
            const ts = LINE_TIMESTAMP.exec(line)?.[1];
            this.firstReplyAt = ts ? Math.round(Number(ts) * 1000) : Date.now();
          }
          const ws = this.waiters;
          this.waiters = [];
          for (const w of ws) w();
        }
      }
    });
    proc.child.stderr?.on('data', (b: Buffer) => { this.output += b.toString(); });
  }

  private nextReply(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.waiters.push(() => { clearTimeout(timer); resolve(true); });
      void this.proc.exited.then(() => { clearTimeout(timer); resolve(false); });
    });
  }

  /** Wait until at least n replies have been seen in total. */
  async waitReplies(n: number, timeoutMs = 20_000): Promise<void> {
    await waitFor(() => this.replies, {
      what: `${n} ping replies (${this.what})`,
      until: (r) => r >= n || !this.proc.running,
      timeoutMs,
      intervalMs: 20,
    });
    if (this.replies < n) throw new Error(`ping exited after ${this.replies} replies (${this.what}):\n${this.output.slice(-2000)}`);
  }

  /**
   * Stop with SIGINT right after a reply arrived, so that no request is in
   * flight when ping prints its summary (transmitted == received when no loss).
   */
  async stop(): Promise<PingResult> {
    if (this.proc.running) {
      await this.nextReply(5000);
      this.proc.signal('SIGINT');
    }
    const info = await this.proc.waitExit(10_000);
    if (!info) {
      this.proc.signal('SIGKILL');
      await this.proc.waitExit(5000);
    }
    // let the stdout pipe drain
    await new Promise<void>((resolve) => {
      const out = this.proc.child.stdout;
      if (!out || out.readableEnded || out.destroyed) return resolve();
      const timer = setTimeout(resolve, 2000);
      out.once('close', () => { clearTimeout(timer); resolve(); });
    });
    const s = parsePingSummary(this.output);
    return {
      ok: s !== undefined && s.received > 0,
      transmitted: s?.transmitted ?? 0,
      received: s?.received ?? 0,
      lossPercent: s?.lossPercent ?? 100,
      output: this.output,
    };
  }
}

/**
 * The environment dockerd runs with: $TSL_ENGINE_DIR (a tree made by
 * scripts/docker-engine.sh, e.g. Docker 28.5 from Debian sid) first on PATH,
 * so its dockerd, containerd, shims and docker-proxy run instead of Debian
 * 12's; without it, the machine's engine (20.10).
 */
export const engineEnv = (): NodeJS.ProcessEnv => {
  const dir = process.env['TSL_ENGINE_DIR'];
  if (!dir) return process.env;
  if (!existsSync(join(dir, 'usr/sbin/dockerd'))) throw new Error(`TSL_ENGINE_DIR=${dir}: no usr/sbin/dockerd there (make it with scripts/docker-engine.sh)`);
  return { ...process.env, PATH: `${join(dir, 'usr/sbin')}:${join(dir, 'usr/bin')}:${process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin'}` };
};

export class LabHost {
  readonly name: string;
  readonly index: number;
  readonly ns: string;
  readonly hostname: string;
  readonly ip: string;
  readonly mtu: number;
  readonly dir: string;
  readonly underlay = UNDERLAY_IF;
  readonly pluginsDir: string;
  readonly pluginSocket: string;
  readonly storePath: string;
  readonly pluginLog: string;
  /** The plugin's --session-file: per host, so a restarted plugin resumes its own ZooKeeper session. */
  readonly zkSessionFile: string;
  readonly dockerSock: string;
  readonly dockerdLog: string;
  dockerd: TrackedProcess | undefined;
  /** The server version dockerd reported when it last answered (e.g. 20.10.24, 28.5.2+dfsg4). */
  engineVersion = '';
  plugin: TrackedProcess | undefined;
  containerdPid: { pid: number; startTime: string } | undefined;
  dockerdMntNs: string | undefined;
  readonly probes = new Set<TrackedProcess>();
  /** dockerd --dns servers */
  readonly dockerDns: string[];
  /** HostSpec.hostResolvers: dockerd runs without --dns and reads these from its /etc/resolv.conf. */
  readonly hostResolvers: string[] | undefined;
  private dockerdStarts = 0;
  private pluginStarts = 0;
  private lastPluginOptions: StartPluginOptions = {};

  constructor(protected readonly lab: LabContext, spec: HostSpec, index: number, ip: string) {
    this.name = spec.name;
    this.index = index;
    this.mtu = spec.mtu ?? 1500;
    this.dockerDns = [...(spec.dockerDns ?? lab.dockerDns ?? [lab.outsideIp])];
    if (this.dockerDns.length === 0) throw new Error(`host ${spec.name}: dockerDns must not be empty (it would fall back to the machine's resolver)`);
    if (spec.hostResolvers !== undefined && spec.hostResolvers.length === 0) throw new Error(`host ${spec.name}: hostResolvers must not be empty`);
    this.hostResolvers = spec.hostResolvers ? [...spec.hostResolvers] : undefined;
    this.ns = `tsl-${lab.id}-${spec.name}`;
    this.hostname = this.ns;
    this.ip = ip;
    this.dir = join(lab.dir, spec.name);
    this.pluginsDir = join(this.dir, 'plugins');
    this.pluginSocket = join(this.pluginsDir, `${PLUGIN_NAME}.sock`);
    this.storePath = join(this.dir, 'state.json');
    this.pluginLog = join(this.dir, 'plugin.log');
    this.zkSessionFile = join(this.dir, 'zk-session.json');
    this.dockerSock = join(this.dir, 'docker.sock');
    this.dockerdLog = join(this.dir, 'dockerd.log');
  }

  toString(): string {
    return `host ${this.name} (${this.ns}, ${this.ip}, mtu ${this.mtu})`;
  }

  // ---------------------------------------------------------------- docker

  private dockerEnv(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_CONFIG: join(this.lab.dir, 'docker-cli') };
    for (const k of ['DOCKER_HOST', 'DOCKER_CONTEXT', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH']) delete env[k];
    return env;
  }

  /** Run the docker CLI against this host; resolve with the result whatever the exit code. */
  dockerTry(...args: string[]): Promise<RunResult> {
    return run('docker', ['-H', `unix://${this.dockerSock}`, ...args], { env: this.dockerEnv(), timeoutMs: 120_000 });
  }

  /** Run the docker CLI against this host; resolve with stdout, throw (with stderr) on failure. */
  async docker(...args: string[]): Promise<string> {
    const r = await this.dockerTry(...args);
    if (r.code !== 0) throw new CommandError(r);
    return r.stdout;
  }

  /** `docker run -d --name NAME ...args busybox:local <sleeper>`; returns the container id. */
  async runSleeper(name: string, ...args: string[]): Promise<string> {
    return (await this.docker('run', '-d', '--name', name, ...args, BUSYBOX_IMAGE, ...SLEEPER)).trim();
  }

  /** The sweep's order for this host's dockerd and containerd (an outer engine goes after the engines inside it). */
  protected readonly dockerdRank: Rank = Rank.Dockerd;
  protected readonly containerdRank: Rank = Rank.Containerd;

  /**
   * nsenter arguments that exec dockerd with `dockerdArgs` in this host's
   * namespaces. Every nsenter/unshare/sh in between execs, so the child we
   * record *is* dockerd.
   */
  protected async dockerdNsenterArgs(dockerdArgs: string[]): Promise<string[]> {
    // Recipe from multi-host-lab.md: only the netns is entered; a private mount
    // + UTS namespace gives a unique hostname and this host's plugin dir over
    // /run/docker/plugins. A private tmpfs over /run/containerd keeps dockerd
    // from adopting a system containerd (it would if /run/containerd/containerd.sock
    // existed) and keeps the shims' sockets of different hosts apart.
    // mount points for the private mount namespace (the bind mounts themselves stay private)
    await mkdir('/run/docker/plugins', { recursive: true });
    await mkdir('/run/containerd', { recursive: true });
    // HostSpec.hostResolvers: this host's own /etc/resolv.conf (else none: dockerd gets --dns and never reads it)
    let resolvConf = '';
    if (this.hostResolvers) {
      resolvConf = join(this.dir, 'resolv.conf');
      await writeFile(resolvConf, `# lab host ${this.name}: dockerd's /etc/resolv.conf\n${this.hostResolvers.map((r) => `nameserver ${r}`).join('\n')}\n`);
    }
    const script = [
      'set -e',
      'hostname "$1"',
      'mount --bind "$2" /run/docker/plugins',
      'mount -t tmpfs -o mode=0711 tsl-containerd /run/containerd',
      'if [ -n "$3" ]; then mount --bind "$3" /etc/resolv.conf; fi',
      'shift 3',
      'exec dockerd "$@"',
    ].join('; ');
    return [`--net=/run/netns/${this.ns}`, '--', 'unshare', '-m', '-u', '--propagation', 'private', '--',
      'sh', '-c', script, 'sh', this.hostname, this.pluginsDir, resolvConf, ...dockerdArgs];
  }

  async startDockerd(opts: { timeoutMs?: number } = {}): Promise<void> {
    if (this.dockerd?.running) throw new Error(`${this}: dockerd already running (pid ${this.dockerd.pid})`);
    this.dockerdStarts++;
    await mkdir(join(this.dir, 'data'), { recursive: true });
    await mkdir(join(this.dir, 'exec'), { recursive: true });
    await mkdir(this.pluginsDir, { recursive: true });
    const configFile = join(this.dir, 'daemon.json');
    if (!existsSync(configFile)) await writeFile(configFile, '{}\n');
    const pidfile = join(this.dir, 'dockerd.pid');
    const dockerdArgs = [
      '--config-file', configFile, // never read a system /etc/docker/daemon.json
      '--data-root', join(this.dir, 'data'),
      '--exec-root', join(this.dir, 'exec'),
      '-H', `unix://${this.dockerSock}`,
      '--pidfile', pidfile,
      '--storage-driver', this.lab.storageDriver,
      '--log-level', this.lab.dockerdLogLevel,
      // Containers' DNS forwarding goes to the lab's own "outside" address
      // (or what the test asked for), never to the machine's resolver.
      ...(this.hostResolvers ? [] : this.dockerDns.flatMap((d) => ['--dns', d])),
    ];
    await writeFile(this.dockerdLog, `---- dockerd start #${this.dockerdStarts} ${new Date().toISOString()}\n`, { flag: 'a' });
    const proc = await TrackedProcess.spawn('nsenter', await this.dockerdNsenterArgs(dockerdArgs),
      { label: `dockerd-${this.name}`, rank: this.dockerdRank, state: this.lab.state, logPath: this.dockerdLog, env: engineEnv() });
    this.dockerd = proc;
    this.engineVersion = await waitFor(
      async () => {
        if (!proc.running) throw new StopWaiting(`dockerd exited (${JSON.stringify(proc.exit)})`);
        const r = await this.dockerTry('version', '--format', '{{.Server.Version}}');
        return r.code === 0 ? r.stdout.trim() : Promise.reject(new Error(r.stderr.trim()));
      },
      { what: `dockerd on ${this} to answer`, timeoutMs: opts.timeoutMs ?? 60_000, intervalMs: 100 },
    ).catch(async (e: unknown) => {
      throw new Error(`${errorText(e)}\n--- ${this.dockerdLog} (tail):\n${await tailFile(this.dockerdLog, 30)}`);
    });
    // nsenter, unshare and sh all exec, so our child *is* dockerd
    const exe = await readlink(`/proc/${proc.pid}/exe`).catch(() => '?');
    const pidInFile = (await readFile(pidfile, 'utf8').catch(() => '')).trim();
    if (!exe.endsWith('/dockerd') || pidInFile !== String(proc.pid)) {
      throw new Error(`${this}: expected pid ${proc.pid} to be dockerd, found exe=${exe} pidfile=${pidInFile}`);
    }
    this.dockerdMntNs = await readlink(`/proc/${proc.pid}/ns/mnt`).catch(() => undefined);
    // dockerd supervises its own containerd; record it too
    const cpid = Number((await readFile(join(this.dir, 'exec/containerd/containerd.pid'), 'utf8').catch(() => '')).trim());
    if (cpid > 0) {
      const st = await procStartTime(cpid);
      if (st) {
        this.containerdPid = { pid: cpid, startTime: st };
        this.lab.state.append(`pid ${cpid} ${st} ${this.containerdRank} containerd-${this.name}`);
      }
    }
  }

  /** SIGTERM dockerd and wait for it (it stops its containers first). */
  async stopDockerd(opts: { graceMs?: number } = {}): Promise<StopResult | undefined> {
    const d = this.dockerd;
    if (!d) return undefined;
    const res = await d.stop(opts.graceMs ?? 60_000);
    if (res.killed) await this.killMountNamespace();
    // its containerd goes down with it; make sure before we go on
    const c = this.containerdPid;
    if (c) {
      const gone = await waitFor(async () => !(await isSameProcessAlive(c.pid, c.startTime)), {
        what: 'containerd to exit', timeoutMs: 15_000,
      }).catch(() => false);
      if (!gone) {
        try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone meanwhile */ }
        await waitFor(async () => !(await isSameProcessAlive(c.pid, c.startTime)), { what: 'containerd to die', timeoutMs: 5000 });
      }
      this.containerdPid = undefined;
    }
    return res;
  }

  /**
   * Fallback after dockerd had to be SIGKILLed: every process still in its
   * private mount namespace (containerd, shims) was started by it for us.
   */
  private async killMountNamespace(): Promise<void> {
    const ns = this.dockerdMntNs;
    if (!ns) return;
    for (const e of await readdir('/proc')) {
      if (!/^\d+$/.test(e)) continue;
      const l = await readlink(`/proc/${e}/ns/mnt`).catch(() => undefined);
      if (l === ns) {
        try { process.kill(Number(e), 'SIGKILL'); } catch { /* gone */ }
      }
    }
  }

  /**
   * kill -9 of dockerd and of everything it started — containerd, the shims
   * and the containers' processes: the engine of a node that dies for good.
   * Nothing is cleaned up through Docker (its endpoints stay in the store).
   */
  async crashDockerd(): Promise<void> {
    const d = this.dockerd;
    if (!d?.running) return;
    const ids = await this.containerIds().catch(() => []);
    const pids = (await Promise.all(ids.map((id) => this.containerPid(id).catch(() => 0)))).filter((p) => p > 0);
    d.signal('SIGKILL');
    await d.waitExit(10_000);
    await this.killMountNamespace();
    for (const pid of pids) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone with its shim */ }
    }
    this.containerdPid = undefined;
  }

  async restartDockerd(opts: { timeoutMs?: number } = {}): Promise<void> {
    await this.stopDockerd();
    await this.startDockerd(opts);
  }

  async importImage(tarball: string): Promise<void> {
    await this.docker('import', '-c', 'CMD ["sh"]', tarball, BUSYBOX_IMAGE);
  }

  /** All container ids, running or not. */
  async containerIds(): Promise<string[]> {
    return (await this.docker('ps', '-aq', '--no-trunc')).split('\n').map((s) => s.trim()).filter(Boolean);
  }

  /**
   * `docker rm -f` of the container with exactly this name, if there is one.
   * (`docker rm -f NAME` with no such name takes NAME as an ID prefix: `c6`
   * removed a container whose ID began with c6.)
   */
  async removeContainer(name: string): Promise<void> {
    const ids = (await this.docker('ps', '-aq', '--filter', `name=^/${name}$`)).split('\n').filter(Boolean);
    if (ids.length) await this.docker('rm', '-f', ...ids);
  }

  async removeAllContainers(): Promise<void> {
    const ids = await this.containerIds();
    if (ids.length) await this.docker('rm', '-f', ...ids);
  }

  async containerPid(container: string): Promise<number> {
    const pid = Number((await this.docker('container', 'inspect', '-f', '{{.State.Pid}}', container)).trim());
    if (!(pid > 0)) throw new Error(`container ${container} on ${this} is not running (pid ${pid})`);
    return pid;
  }

  // --------------------------------------------------------------- probes

  /** Run a host command in the host's network namespace. */
  hostExec(cmd: string, ...args: string[]): Promise<RunResult> {
    return run('nsenter', [`--net=/run/netns/${this.ns}`, '--', cmd, ...args], { timeoutMs: 60_000 });
  }

  /** Run a host tool (ip, ping, ...) inside a container's network namespace. */
  async nsExec(container: string, cmd: string, ...args: string[]): Promise<RunResult> {
    const pid = await this.containerPid(container);
    return run('nsenter', ['-t', String(pid), '-n', '--', cmd, ...args], { timeoutMs: 120_000 });
  }

  /** Like nsExec, but resolve with stdout and throw on failure. */
  async nsSh(container: string, cmd: string, ...args: string[]): Promise<string> {
    const r = await this.nsExec(container, cmd, ...args);
    if (r.code !== 0) throw new CommandError(r);
    return r.stdout;
  }

  async ping(container: string, target: string, opts: PingOptions = {}): Promise<PingResult> {
    const count = opts.count ?? 3;
    const timeout = opts.timeout ?? 2;
    let r: RunResult;
    if (opts.viaDockerExec) {
      const args = ['exec', container, 'ping', '-c', String(count), '-W', String(timeout)];
      if (opts.size !== undefined) args.push('-s', String(opts.size));
      r = await this.dockerTry(...args, target);
    } else {
      const interval = opts.interval ?? 0.2;
      // exactly `count` requests; -W bounds the wait for each reply
      const args = ['-n', '-c', String(count), '-i', String(interval), '-W', String(timeout)];
      if (opts.size !== undefined) args.push('-s', String(opts.size));
      if (opts.dontFragment) args.push('-M', 'do');
      r = await this.nsExec(container, 'ping', ...args, target);
    }
    const output = r.stdout + r.stderr;
    return pingResult(r.code, output);
  }

  /** Continuous ping (iputils) from a container's netns; stop() ends it and returns the summary. */
  async pingStream(
    container: string,
    target: string,
    opts: { interval?: number; size?: number; /** more iputils ping options, e.g. ['-D', '-c', '1', '-w', '10'] */ args?: string[] } = {},
  ): Promise<PingStream> {
    const pid = await this.containerPid(container);
    const args = ['-t', String(pid), '-n', '--', 'ping', '-n', '-i', String(opts.interval ?? 0.02)];
    if (opts.size !== undefined) args.push('-s', String(opts.size));
    if (opts.args) args.push(...opts.args);
    args.push(target);
    const proc = await TrackedProcess.spawn('nsenter', args, {
      label: `ping-${this.name}-${container}`, rank: Rank.Probe, state: this.lab.state,
    });
    this.probes.add(proc);
    void proc.exited.then(() => this.probes.delete(proc));
    return new PingStream(proc, `${container} -> ${target} on ${this.name}`);
  }

  /** One DNS query from a container's netns straight to `server` (no Docker DNS involved). */
  async dnsQuery(container: string, server: string, name: string, opts?: DnsQueryOptions): Promise<DnsQueryResult> {
    return dnsQuery(nsOfPid(await this.containerPid(container)), server, name, opts);
  }

  /** Raw bytes from a container's netns to `server`; the first reply, if any. */
  async dnsRaw(container: string, server: string, bytes: Buffer, opts?: { timeoutMs?: number; tcp?: boolean }): Promise<DnsRawResult> {
    return dnsRaw(nsOfPid(await this.containerPid(container)), server, bytes, opts);
  }

  /** Several raw payloads at once from a container's netns; results in order. */
  async dnsRawMany(container: string, server: string, payloads: Buffer[], opts?: { timeoutMs?: number; tcp?: boolean }): Promise<DnsRawResult[]> {
    return dnsRawMany(nsOfPid(await this.containerPid(container)), server, payloads, opts);
  }

  /** A query every few ms from a container's netns until answered (or gone); a probe, stopped by destroy(). */
  async dnsPoll(container: string, server: string, name: string, opts: DnsPollOptions = {}): Promise<DnsPoller> {
    const p = await DnsPoller.start(nsOfPid(await this.containerPid(container)), server, name, {
      ...opts, state: this.lab.state, label: `dnspoll-${this.name}-${container}`,
    });
    this.probes.add(p.proc);
    void p.proc.exited.then(() => this.probes.delete(p.proc));
    return p;
  }

  /** Link names in the host's network namespace. */
  async links(): Promise<string[]> {
    const out = await sh('ip', ['-n', this.ns, '-o', 'link', 'show']);
    return out.split('\n').map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1]).filter((x): x is string => Boolean(x));
  }

  /** Links created by tsoverlay (names starting with "ts"). */
  async tsLinks(): Promise<string[]> {
    return (await this.links()).filter((n) => n.startsWith('ts'));
  }

  /**
   * Static FDB entries on tsoverlay's VXLAN devices (tsvx-*), read with
   * `bridge fdb show` in the host namespace. An all-zero MAC is a head-end
   * replication entry toward `dst`.
   */
  async fdbEntries(): Promise<FdbEntry[]> {
    const out = await sh('bridge', ['-n', this.ns, 'fdb', 'show']);
    const res: FdbEntry[] = [];
    for (const line of out.split('\n')) {
      const m = /^([0-9a-f:]{17}) dev (tsvx-[0-9a-f]{6})(.*)$/.exec(line.trim());
      if (!m) continue;
      const dst = / dst (\S+)/.exec(m[3]!)?.[1];
      res.push({ mac: m[1]!, dev: m[2]!, dst, line: line.trim() });
    }
    return res;
  }

  /** Neighbour entries on tsoverlay's VXLAN devices (tsvx-*). */
  async neighEntries(): Promise<NeighEntry[]> {
    const out = await sh('ip', ['-n', this.ns, '-4', 'neigh', 'show']);
    const res: NeighEntry[] = [];
    for (const line of out.split('\n')) {
      const m = /^(\S+) dev (tsvx-[0-9a-f]{6})(?: lladdr ([0-9a-f:]{17}))?.*?(\S+)$/.exec(line.trim());
      if (!m) continue;
      res.push({ ip: m[1]!, dev: m[2]!, mac: m[3], state: m[4]!, line: line.trim() });
    }
    return res;
  }

  // --------------------------------------------------------------- plugin

  /** Start the plugin; `startPlugin(['--vxlan-port', '4790'])` is short for `startPlugin({ args: [...] })`. */
  async startPlugin(optsOrArgs: StartPluginOptions | string[] = {}): Promise<void> {
    const given: StartPluginOptions = Array.isArray(optsOrArgs) ? { args: optsOrArgs } : optsOrArgs;
    this.lastPluginOptions = given;
    const defaults = this.lab.pluginDefaults ?? {};
    const opts: StartPluginOptions = { ...defaults, ...given, args: [...(defaults.args ?? []), ...(given.args ?? [])] };
    let store = opts.store ?? `file://${this.storePath}`;
    if (store === 'zk') {
      const zk = this.lab.zkStore?.();
      if (!zk) throw new Error(`${this}: store 'zk' asked for, but the lab runs no ZooKeeper`);
      store = zk;
    }
    let dnsUpstream = opts.dnsUpstream;
    if (dnsUpstream === 'lab') {
      dnsUpstream = this.lab.labDns?.();
      if (!dnsUpstream) throw new Error(`${this}: dnsUpstream 'lab' asked for, but the lab's DNS server is not running`);
    }
    if (this.plugin?.running) throw new Error(`${this}: plugin already running (pid ${this.plugin.pid})`);
    if (!existsSync(this.lab.pluginCli)) {
      throw new Error(`plugin CLI ${this.lab.pluginCli} not found: run \`npm run build\` first`);
    }
    this.pluginStarts++;
    await mkdir(this.pluginsDir, { recursive: true });
    await writeFile(this.pluginLog, `---- plugin start #${this.pluginStarts} ${new Date().toISOString()}\n`, { flag: 'a' });
    const args = [
      `--net=/run/netns/${this.ns}`, '--', process.execPath, ...(await nodeFlagsOf(this.lab.pluginCli)), this.lab.pluginCli, 'serve',
      '--socket', this.pluginSocket,
      '--store', store,
      '--advertise', opts.advertise ?? this.underlay,
      '--log-level', opts.logLevel ?? 'debug',
      '--session-file', this.zkSessionFile,
      ...(opts.nodeName === null ? [] : ['--node-name', opts.nodeName ?? this.hostname]),
      ...(opts.dockerHost === null ? [] : ['--docker-host', opts.dockerHost ?? `unix://${this.dockerSock}`]),
      ...(opts.zkSessionTimeoutMs === undefined ? [] : ['--zk-session-timeout-ms', String(opts.zkSessionTimeoutMs)]),
      ...(opts.resyncIntervalMs === undefined ? [] : ['--resync-interval-ms', String(opts.resyncIntervalMs)]),
      ...(opts.peerGraceMs === undefined ? [] : ['--peer-grace-ms', String(opts.peerGraceMs)]),
      ...(dnsUpstream === undefined ? [] : ['--dns-upstream', dnsUpstream]),
      ...(opts.dnsAddress === undefined ? [] : ['--dns-address', opts.dnsAddress]),
      ...(opts.args ?? []),
    ];
    const proc = await TrackedProcess.spawn('nsenter', args, {
      label: `plugin-${this.name}`, rank: Rank.Plugin, state: this.lab.state, logPath: this.pluginLog,
      env: opts.env ?? process.env,
    });
    this.plugin = proc;
    await waitFor(
      async () => {
        if (!proc.running) throw new StopWaiting(`plugin exited (${JSON.stringify(proc.exit)})`);
        // The socket opens at once; GET /ready says when the store is connected and the kernel reconciled.
        const r = await pluginRequest(this.pluginSocket, '/ready', undefined, { timeoutMs: 2000, method: 'GET' });
        return r.status === 200 || (opts.ready === false && r.status === 503) ? r : Promise.reject(new Error(`/ready answered ${r.status} ${r.text}`));
      },
      { what: `plugin on ${this} to ${opts.ready === false ? 'serve' : 'be ready'} (GET /ready)`, timeoutMs: opts.timeoutMs ?? 30_000, intervalMs: 50 },
    ).catch(async (e: unknown) => {
      if (proc.running) await proc.stop(5000);
      throw new Error(`${errorText(e)}\n--- ${this.pluginLog} (tail):\n${await tailFile(this.pluginLog, 30)}`);
    });
  }

  /** SIGTERM the plugin and wait; throws if it had to be SIGKILLed. */
  async stopPlugin(opts: { graceMs?: number } = {}): Promise<StopResult | undefined> {
    const p = this.plugin;
    if (!p?.running) return p?.exit ? { ...p.exit, killed: false, elapsedMs: 0 } : undefined;
    const res = await p.stop(opts.graceMs ?? 15_000);
    if (res.killed) {
      throw new Error(`plugin on ${this} ignored SIGTERM for ${opts.graceMs ?? 15_000} ms and was killed\n${await p.logTail()}`);
    }
    return res;
  }

  /** stopPlugin + startPlugin; without arguments it starts with the options of the last start. */
  async restartPlugin(optsOrArgs?: StartPluginOptions | string[]): Promise<void> {
    await this.stopPlugin();
    await this.startPlugin(optsOrArgs ?? this.lastPluginOptions);
  }

  /** SIGKILL the plugin (a crash: the socket file stays behind). */
  async killPlugin(): Promise<void> {
    const p = this.plugin;
    if (!p?.running) return;
    p.signal('SIGKILL');
    await p.waitExit(10_000);
  }

  /** POST to the plugin socket directly. */
  pluginRequest(path: string, body?: string | Buffer, opts?: PluginRequestOptions): Promise<PluginResponse> {
    return pluginRequest(this.pluginSocket, path, body, opts);
  }

  async readStore(): Promise<string | undefined> {
    return readFile(this.storePath, 'utf8').catch(() => undefined);
  }

  /** The id of the ZooKeeper session the plugin last saved (its --session-file), if any. */
  async zkSessionId(): Promise<string | undefined> {
    try {
      const f = JSON.parse(await readFile(this.zkSessionFile, 'utf8')) as { id?: unknown };
      return typeof f.id === 'string' ? f.id : undefined;
    } catch {
      return undefined;
    }
  }

  async logs(lines = 60): Promise<string> {
    return `--- ${this.dockerdLog}\n${await tailFile(this.dockerdLog, lines)}\n--- ${this.pluginLog}\n${await tailFile(this.pluginLog, lines)}`;
  }

  /** Stop everything this host runs; used by Lab.destroy(). Collects errors instead of throwing. */
  async shutdown(errors: string[]): Promise<void> {
    debug(`${this.name}: shutdown`);
    if (this.dockerd?.running) {
      try {
        await this.removeAllContainers();
      } catch (e) {
        errors.push(`${this.name}: removing containers: ${errorText(e)}`);
      }
      debug(`${this.name}: containers removed`);
      try {
        const r = await this.stopDockerd();
        debug(`${this.name}: dockerd stopped ${JSON.stringify(r)}`);
        if (r?.killed) errors.push(`${this.name}: dockerd ignored SIGTERM for 60 s and was killed`);
      } catch (e) {
        errors.push(`${this.name}: stopping dockerd: ${errorText(e)}`);
      }
    }
    for (const p of this.probes) {
      const r = await p.stop(2000);
      if (r.killed) errors.push(`${this.name}: probe ${p.label} had to be killed`);
    }
    if (this.plugin?.running) {
      const r = await this.plugin.stop(15_000);
      if (r.killed) errors.push(`${this.name}: plugin ignored SIGTERM for 15 s and was killed`);
    }
    debug(`${this.name}: shutdown done`);
  }
}
