// Long-running processes the lab starts (dockerd, plugin, ZooKeeper, ping
// streams). Each one is recorded -- pid and kernel start time -- in the lab's
// state file the moment it exists, so that:
//   * the harness only ever signals pids it recorded itself, and
//   * scripts/lab-sweep.sh can clean up after a test process that was killed
//     (it kills only recorded pids whose start time still matches).
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, openSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { procStartTime, quote, tailFile } from './proc.js';

/**
 * Order in which the sweep stops leftovers: dockerd first (it needs the plugin
 * to tear down endpoints); the docker-in-docker backend's outer engine last
 * (stopping it stops the node and ZooKeeper containers the others run in).
 */
export const Rank = { Dockerd: 1, Containerd: 2, Probe: 3, Plugin: 4, ZooKeeper: 5, Engine: 6 } as const;
export type Rank = (typeof Rank)[keyof typeof Rank];

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class StateFile {
  constructor(readonly path: string) {}
  append(line: string): void {
    appendFileSync(this.path, `${line}\n`);
  }
}

export interface SpawnTrackedOptions {
  label: string;
  rank: Rank;
  state: StateFile;
  /** stdout+stderr are appended here; if absent they are piped (use `child.stdout`). */
  logPath?: string;
  env?: NodeJS.ProcessEnv;
}

export class TrackedProcess {
  readonly pid: number;
  readonly label: string;
  readonly logPath: string | undefined;
  readonly child: ChildProcess;
  readonly exited: Promise<ExitInfo>;
  readonly cmd: string;
  startTime: string | undefined;
  private exitInfo: ExitInfo | undefined;

  private constructor(child: ChildProcess, label: string, logPath: string | undefined, cmd: string) {
    if (child.pid === undefined) throw new Error(`failed to spawn ${label}: ${cmd}`);
    this.pid = child.pid;
    this.child = child;
    this.label = label;
    this.logPath = logPath;
    this.cmd = cmd;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
    });
  }

  static async spawn(file: string, args: readonly string[], opts: SpawnTrackedOptions): Promise<TrackedProcess> {
    let fd: number | undefined;
    if (opts.logPath) fd = openSync(opts.logPath, 'a');
    const cmd = quote([file, ...args]);
    let child: ChildProcess;
    try {
      child = spawn(file, args, {
        // own process group: a Ctrl-C on the test run reaches only the test
        // process, whose handler then tears the lab down in order.
        detached: true,
        stdio: fd !== undefined ? ['ignore', fd, fd] : ['ignore', 'pipe', 'pipe'],
        env: opts.env ?? process.env,
      });
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    const p = new TrackedProcess(child, opts.label, opts.logPath, cmd);
    // the start time identifies the process for the sweep even after pid reuse
    p.startTime = await procStartTime(p.pid);
    opts.state.append(`pid ${p.pid} ${p.startTime ?? '0'} ${opts.rank} ${opts.label}`);
    const early = await Promise.race([spawnError, delay(0).then(() => undefined)]);
    child.removeAllListeners('error');
    child.on('error', () => { /* reported through exit */ });
    if (early) throw new Error(`failed to start ${opts.label} (${cmd}): ${early.message}`);
    return p;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  get exit(): ExitInfo | undefined {
    return this.exitInfo;
  }

  signal(sig: NodeJS.Signals): void {
    if (!this.running) return;
    try {
      process.kill(this.pid, sig);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
    }
  }

  /** Resolve with the exit info, or undefined if it did not exit within timeoutMs. */
  async waitExit(timeoutMs: number): Promise<ExitInfo | undefined> {
    if (this.exitInfo) return this.exitInfo;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), timeoutMs); });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGTERM, wait; SIGKILL if it is still there after graceMs. Resolves with how it ended. */
  async stop(graceMs: number): Promise<ExitInfo & { killed: boolean; elapsedMs: number }> {
    const t0 = Date.now();
    this.signal('SIGTERM');
    let info = await this.waitExit(graceMs);
    let killed = false;
    if (!info) {
      killed = true;
      this.signal('SIGKILL');
      info = (await this.waitExit(10_000)) ?? { code: null, signal: null };
    }
    return { ...info, killed, elapsedMs: Date.now() - t0 };
  }

  async logTail(lines = 40): Promise<string> {
    return this.logPath ? tailFile(this.logPath, lines) : '(no log)';
  }
}
