// Small process helpers for the lab harness: run a command to completion,
// capture its output, and fail with the command line and its stderr.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';

export interface RunResult {
  cmd: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string | Buffer;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export class CommandError extends Error {
  readonly result: RunResult;
  constructor(result: RunResult) {
    const how = result.signal !== null ? `signal ${result.signal}` : `exit ${result.code}`;
    const detail = (result.stderr.trim() || result.stdout.trim()).slice(-4000);
    super(`command failed (${how}): ${result.cmd}${detail ? `\n${detail}` : ''}`);
    this.name = 'CommandError';
    this.result = result;
  }
}

export function quote(args: readonly string[]): string {
  return args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** Run a command and resolve with its result, whatever its exit status. */
export function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const cmd = quote([file, ...args]);
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    if (opts.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL'); // our own child, recorded by handle
      }, opts.timeoutMs);
    }
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(new Error(`cannot run ${cmd}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      let stderr = Buffer.concat(err).toString();
      if (timedOut) stderr += `\n(timed out after ${opts.timeoutMs} ms)`;
      resolve({ cmd, code, signal, stdout: Buffer.concat(out).toString(), stderr });
    });
    child.stdin.on('error', () => { /* child may exit before reading stdin */ });
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

/** Run a command; resolve with stdout, reject with a CommandError on non-zero exit. */
export async function sh(file: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(file, args, opts);
  if (r.code !== 0) throw new CommandError(r);
  return r.stdout;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), or undefined if gone. */
export async function procStartTime(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state); field 22 is rest[19]
    const st = rest[19];
    // a zombie still has a start time, but it is already dead for our purposes
    if (rest[0] === 'Z') return undefined;
    return st;
  } catch {
    return undefined;
  }
}

/** True while the process with this pid is the one that had this start time. */
export async function isSameProcessAlive(pid: number, startTime: string): Promise<boolean> {
  return (await procStartTime(pid)) === startTime;
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export async function tailFile(path: string, lines = 40): Promise<string> {
  try {
    const text = await readFile(path, 'utf8');
    return text.split('\n').slice(-lines).join('\n');
  } catch (e) {
    return `(cannot read ${path}: ${errorText(e)})`;
  }
}

const DEBUG = process.env['TSL_DEBUG'] === '1';
const t0 = Date.now();
/** Progress lines on stderr when TSL_DEBUG=1. */
export function debug(msg: string): void {
  if (DEBUG) process.stderr.write(`[lab +${((Date.now() - t0) / 1000).toFixed(2)}s] ${msg}\n`);
}
