// ZooKeeper for the lab: each server in its own network namespace on the
// underlay switch (so a test can cut one off), started in the foreground as
// multi-host-lab.md describes, ready when `srvr` reports a Mode.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './proc.js';
import { Rank, StateFile, TrackedProcess } from './tracked.js';
import { StopWaiting, waitFor } from './wait.js';
import { zkJavaArgs, zkTlsClasspath } from './zk-java.js';
import { type ZkTlsMaterial, makeZkTls, zkTlsConfig } from './zk-tls.js';

export interface ZooKeeperOptions {
  servers?: number;
  tickTimeMs?: number;
  clientPort?: number;
  /**
   * TLS only (netns backend): clients reach the servers on `securePort`
   * (default 2281) over TLS with client certificates (`tlsMaterial`); the
   * plain port listens on the server namespace's loopback only, for the
   * lab's own probes (four-letter words, zkRaw).
   */
  tls?: boolean;
  securePort?: number;
}

export interface ZkServer {
  id: number;
  ns: string;
  ip: string;
  dir: string;
  log: string;
  proc: TrackedProcess | undefined;
}


export class ZooKeeperEnsemble {
  readonly servers: ZkServer[];
  readonly clientPort: number;
  readonly tickTimeMs: number;
  readonly tls: boolean;
  readonly securePort: number;
  /** CA, client certificate and key for the plugins (tls only; made before the first server starts). */
  tlsMaterial: ZkTlsMaterial | undefined;

  constructor(
    protected readonly labId: string,
    labDir: string,
    protected readonly state: StateFile,
    ips: string[],
    opts: ZooKeeperOptions,
  ) {
    this.clientPort = opts.clientPort ?? 2181;
    this.tickTimeMs = opts.tickTimeMs ?? 500;
    this.tls = opts.tls ?? false;
    this.securePort = opts.securePort ?? 2281;
    this.labDir = labDir;
    this.servers = ips.map((ip, i) => {
      const id = i + 1;
      const dir = join(labDir, `zk${id}`);
      return { id, ns: `tsl-${labId}-zk${id}`, ip, dir, log: join(dir, 'zookeeper.log'), proc: undefined };
    });
  }

  private readonly labDir: string;

  /** host:port,host:port,... (the TLS port with tls) */
  get connectString(): string {
    return this.servers.map((s) => `${s.ip}:${this.tls ? this.securePort : this.clientPort}`).join(',');
  }

  /** A plaintext connect string from inside the first server's namespace (its loopback with tls). */
  get rawConnectString(): string {
    return this.tls ? `127.0.0.1:${this.clientPort}` : this.connectString;
  }

  /** The address the plain port listens on. */
  private plainAddress(s: ZkServer): string {
    return this.tls ? '127.0.0.1' : s.ip;
  }

  async startServer(id: number): Promise<void> {
    const s = this.server(id);
    if (this.isRunning(id)) throw new Error(`zk${id} already running`);
    if (this.tls && !this.tlsMaterial) this.tlsMaterial = await makeZkTls(join(this.labDir, 'zk-tls'), this.servers.map((o) => `IP:${o.ip}`));
    const cfg = await this.writeConfig(s);
    s.proc = await TrackedProcess.spawn(
      'nsenter',
      [`--net=/run/netns/${s.ns}`, '--', 'java', ...zkJavaArgs(cfg, s.dir, this.tls ? zkTlsClasspath() : undefined)],
      { label: `zookeeper-${s.id}-${this.labId}`, rank: Rank.ZooKeeper, state: this.state, logPath: s.log },
    );
  }

  /** zoo.cfg and myid of a server, in its directory; returns the zoo.cfg path. */
  protected async writeConfig(s: ZkServer): Promise<string> {
    await mkdir(join(s.dir, 'data'), { recursive: true });
    const lines = [
      `tickTime=${this.tickTimeMs}`,
      'initLimit=20',
      'syncLimit=10',
      `dataDir=${join(s.dir, 'data')}`,
      `clientPort=${this.clientPort}`,
      `clientPortAddress=${this.plainAddress(s)}`,
      ...(this.tlsMaterial ? zkTlsConfig(this.tlsMaterial, this.securePort, s.ip, 'need') : []),
      'admin.enableServer=false',
      '4lw.commands.whitelist=ruok,srvr,mntr,cons,wchc',
      'maxClientCnxns=0',
    ];
    if (this.servers.length > 1) {
      for (const o of this.servers) lines.push(`server.${o.id}=${o.ip}:2888:3888`);
    }
    const cfg = join(s.dir, 'zoo.cfg');
    await writeFile(cfg, `${lines.join('\n')}\n`);
    await writeFile(join(s.dir, 'data', 'myid'), `${s.id}\n`);
    return cfg;
  }

  async stopServer(id: number): Promise<void> {
    const s = this.server(id);
    if (s.proc?.running) await s.proc.stop(15_000);
  }

  /**
   * Stop a server, delete its whole database (snapshots and logs: every znode
   * and session is gone, as after a data loss) and start it again empty.
   */
  async wipeServer(id: number): Promise<void> {
    const s = this.server(id);
    await this.stopServer(id);
    await rm(join(s.dir, 'data'), { recursive: true, force: true });
    await this.startServer(id);
  }

  /** Ask a four-letter word from inside the server's namespace. */
  async fourLetter(id: number, word: string): Promise<string> {
    const s = this.server(id);
    const r = await run('nsenter', [`--net=/run/netns/${s.ns}`, '--', 'busybox', 'nc', '-w', '2', this.plainAddress(s), String(this.clientPort)],
      { input: word, timeoutMs: 5000 });
    return r.stdout;
  }

  /** Kill a server with SIGKILL (a crash) and wait for it to exit. */
  async killServer(id: number): Promise<void> {
    const s = this.server(id);
    if (!s.proc?.running) return;
    s.proc.signal('SIGKILL');
    if (!(await s.proc.waitExit(10_000))) throw new Error(`zk${id} did not exit after SIGKILL`);
  }

  isRunning(id: number): boolean {
    return Boolean(this.server(id).proc?.running);
  }

  /** The server's Mode from `srvr` (leader, follower, standalone), or undefined if it does not answer with one. */
  async mode(id: number): Promise<string | undefined> {
    if (!this.isRunning(id)) return undefined;
    return /Mode: (\w+)/.exec(await this.fourLetter(id, 'srvr'))?.[1];
  }

  /** Id of the running server that says it is the leader (or standalone), if any. */
  async leader(): Promise<number | undefined> {
    for (const s of this.servers) {
      const m = await this.mode(s.id);
      if (m === 'leader' || m === 'standalone') return s.id;
    }
    return undefined;
  }

  /** Wait until every server (or the ones in `ids`) reports a Mode. */
  async waitReady(timeoutMs = 60_000, ids?: number[]): Promise<void> {
    const which = ids ? this.servers.filter((s) => ids.includes(s.id)) : this.servers;
    await Promise.all(which.map((s) => waitFor(async () => {
      if (!this.isRunning(s.id)) throw new StopWaiting(`zk${s.id} exited ${JSON.stringify(s.proc?.exit)}`);
      return this.fourLetter(s.id, 'srvr');
    }, { what: `zk${s.id} to report a Mode`, until: (o) => /Mode: (standalone|leader|follower)/.test(o), timeoutMs, intervalMs: 250 })));
  }

  async stopAll(): Promise<string[]> {
    const errors: string[] = [];
    await Promise.all(this.servers.map(async (s) => {
      if (s.proc?.running) {
        const r = await s.proc.stop(15_000);
        if (r.killed) errors.push(`zk${s.id} ignored SIGTERM and was killed`);
      }
    }));
    return errors;
  }

  protected server(id: number): ZkServer {
    const s = this.servers[id - 1];
    if (!s) throw new Error(`no zk server ${id}`);
    return s;
  }
}
