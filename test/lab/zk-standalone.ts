/**
 * A standalone ZooKeeper server on 127.0.0.1 for contract tests (one per
 * test file): started in the foreground, ready when `ruok` answers, tracked
 * in a lab state file so scripts/lab-sweep.sh can stop it if a run dies.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { procStartTime } from './proc.js';
import { Rank, StateFile, TrackedProcess } from './tracked.js';
import { waitFor } from './wait.js';
import { zkJavaArgs } from './zk-java.js';


export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });

export const fourLetter = (port: number, word: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let out = '';
    s.setTimeout(2000, () => s.destroy(new Error(`no answer to ${word}`)));
    s.on('connect', () => s.write(word));
    s.on('data', (d: Buffer) => (out += d.toString()));
    s.on('error', reject);
    s.on('close', () => resolve(out));
  });

/**
 * ZooKeeper on 127.0.0.1 and a free port, data in a lab directory
 * (/tmp/tsl-<id> with lab.state) so scripts/lab-sweep.sh stops it if this
 * process dies before its teardown.
 */
export class TestZooKeeper {
  private proc: TrackedProcess | undefined;
  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly state: StateFile,
    private readonly classpath: string | undefined,
  ) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** `extraConfig`: more zoo.cfg lines (given the server's directory); `classpath`: instead of zkClasspath(). */
  static async create(opts: { extraConfig?: (dir: string) => Promise<string[]>; classpath?: string } = {}): Promise<TestZooKeeper> {
    const dir = join(process.env['TSL_BASE_DIR'] ?? '/tmp', `tsl-${randomBytes(3).toString('hex')}`);
    await mkdir(join(dir, 'data'), { recursive: true });
    const state = new StateFile(join(dir, 'lab.state'));
    state.append(`owner ${process.pid} ${(await procStartTime(process.pid)) ?? '0'}`);
    const zk = new TestZooKeeper(dir, await freePort(), state, opts.classpath);
    const cfg = [
      'tickTime=500', // sessions of 1..10 s
      `dataDir=${join(dir, 'data')}`,
      `clientPort=${zk.port}`,
      'clientPortAddress=127.0.0.1',
      'admin.enableServer=false',
      '4lw.commands.whitelist=ruok,srvr,mntr',
      'maxClientCnxns=0',
      'forceSync=no',
      ...((await opts.extraConfig?.(dir)) ?? []),
    ];
    await writeFile(join(dir, 'zoo.cfg'), `${cfg.join('\n')}\n`);
    return zk;
  }

  async start(): Promise<void> {
    if (this.proc?.running) throw new Error('ZooKeeper already running');
    const proc = await TrackedProcess.spawn(
      'java',
      zkJavaArgs(join(this.dir, 'zoo.cfg'), this.dir, this.classpath),
      { label: `zookeeper-test-${this.port}`, rank: Rank.ZooKeeper, state: this.state, logPath: join(this.dir, 'zookeeper.log') },
    );
    this.proc = proc;
    try {
      await waitFor(
        async () => {
          if (!proc.running) throw new Error(`ZooKeeper exited ${JSON.stringify(proc.exit)}`);
          return fourLetter(this.port, 'ruok');
        },
        { what: `ZooKeeper on ${this.address} to answer imok`, until: (v) => v === 'imok', timeoutMs: 60_000, intervalMs: 100 },
      );
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${await proc.logTail(30)}`);
    }
  }

  signal(sig: NodeJS.Signals): void {
    this.proc?.signal(sig);
  }

  /** SIGTERM (after SIGCONT, in case it is paused) and wait until it has exited. */
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p?.running) return;
    p.signal('SIGCONT');
    await p.stop(15_000);
  }

  async destroy(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}
