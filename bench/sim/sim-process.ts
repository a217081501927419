/**
 * Start sim-main.ts inside a lab (in its switch namespace, which reaches
 * every ZooKeeper server) and talk to it: its pid is recorded in the lab's
 * state file first thing, so the lab's teardown (and scripts/lab-sweep.sh
 * after a crash) ends it with everything else the lab started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Lab } from '../../test/lab/index.js';
import { procStartTime } from '../../test/lab/proc.js';
import { Rank } from '../../test/lab/tracked.js';
import type { ChurnResult, ChurnTarget } from './sim-cluster.js';

export interface SimProcessOptions {
  /** sims in this process */
  nodes: number;
  /** global index of its first sim, and the sims of all processes (default: this process's alone) */
  first?: number;
  total?: number;
  /** at most this many sims of `total` on the shared network (sim-cluster.ts) */
  sharedLimit?: number;
  /** register only; the networks come with createGroups() and joinNetworks() */
  staged?: boolean;
  /** subnet of a network the real nodes share with every sim */
  shared?: string;
  follow?: boolean;
  groupSize?: number;
  /** how long registering and joining may take */
  readyTimeoutMs?: number;
}

const MAIN = fileURLToPath(new URL('./sim-main.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../..', import.meta.url));

export class SimProcess {
  private readonly answers: Array<(msg: Record<string, unknown>) => void> = [];
  private readonly queued: Array<Record<string, unknown>> = [];
  private stderr = '';
  private exited: string | undefined;

  private constructor(readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        this.stderr += `(stdout) ${line}\n`;
        return;
      }
      const next = this.answers.shift();
      if (next) next(msg);
      else this.queued.push(msg);
    });
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-8000);
    });
    child.once('exit', (code, signal) => {
      this.exited = `exited ${code ?? signal}`;
      for (const a of this.answers.splice(0)) a({ error: `${this.exited}: ${this.stderr.trim()}` });
    });
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  static async start(lab: Lab, opts: SimProcessOptions): Promise<{ sim: SimProcess; ready: Record<string, unknown> }> {
    if (!lab.zk) throw new Error('the simulated nodes need the lab\'s ZooKeeper');
    const args = [
      `--net=/run/netns/${lab.switchNs}`, '--', process.execPath, '--import=@tapjs/typescript/import', MAIN,
      '--servers', lab.zk.connectString, '--chroot', lab.zkChroot, '--nodes', String(opts.nodes),
      ...(opts.shared ? ['--shared', opts.shared] : []),
      ...(opts.follow === false ? ['--no-follow'] : []),
      ...(opts.groupSize ? ['--group-size', String(opts.groupSize)] : []),
      ...(opts.first ? ['--first', String(opts.first)] : []),
      ...(opts.total ? ['--total', String(opts.total)] : []),
      ...(opts.staged ? ['--staged'] : []),
      ...(opts.sharedLimit ? ['--shared-limit', String(opts.sharedLimit)] : []),
    ];
    const child = spawn('nsenter', args, { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' } });
    if (!child.pid) throw new Error('could not start the simulated nodes');
    lab.state.append(`pid ${child.pid} ${(await procStartTime(child.pid)) ?? '0'} ${Rank.Probe} sim-nodes-${lab.id}`);
    const sim = new SimProcess(child);
    try {
      const ready = await sim.next(opts.readyTimeoutMs ?? 600_000, 'ready');
      return { sim, ready: ready['ready'] as Record<string, unknown> };
    } catch (e) {
      // not left for the lab's teardown, which would report it as a leftover
      if (!sim.exited) {
        const gone = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await gone;
      }
      throw e;
    }
  }

  /** The next message, or throws on an error, exit or timeout. */
  private next(timeoutMs: number, what: string): Promise<Record<string, unknown>> {
    const queued = this.queued.shift();
    if (queued) return Promise.resolve(queued);
    if (this.exited) return Promise.reject(new Error(`simulated nodes ${this.exited}: ${this.stderr.trim()}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`simulated nodes: no ${what} within ${timeoutMs} ms; stderr: ${this.stderr.trim()}`)), timeoutMs);
      this.answers.push((msg) => {
        clearTimeout(timer);
        if (msg['error']) reject(new Error(`simulated nodes: ${String(msg['error'])}`));
        else resolve(msg);
      });
    });
  }

  private async ask(cmd: Record<string, unknown>, timeoutMs: number): Promise<Record<string, unknown>> {
    this.child.stdin!.write(`${JSON.stringify(cmd)}\n`);
    return this.next(timeoutMs, String(cmd['cmd']));
  }

  /** Create the group networks whose first sim is here (staged); returns how many. */
  async createGroups(timeoutMs = 600_000): Promise<number> {
    return Number((await this.ask({ cmd: 'create' }, timeoutMs))['created']);
  }

  /** Join the sims' group networks and the shared one (staged). */
  async joinNetworks(timeoutMs = 600_000): Promise<void> {
    await this.ask({ cmd: 'join' }, timeoutMs);
  }

  async churn(target: ChurnTarget, rate: number, seconds: number, holdMs?: number): Promise<ChurnResult & { simCpuS: number }> {
    const r = await this.ask({ cmd: 'churn', target, rate, seconds, ...(holdMs === undefined ? {} : { holdMs }) }, seconds * 1000 + 120_000);
    return r['churn'] as ChurnResult & { simCpuS: number };
  }

  async stats(): Promise<Record<string, unknown>> {
    return (await this.ask({ cmd: 'stats' }, 30_000))['stats'] as Record<string, unknown>;
  }

  /** End every sim's session and the process. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    await this.ask({ cmd: 'stop' }, 60_000).catch(() => this.child.kill('SIGKILL'));
    await gone;
  }
}
