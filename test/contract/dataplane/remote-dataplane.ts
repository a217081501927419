/**
 * A NetlinkDataplane in another network namespace, for the data-path tests
 * of the contract suite: `RemoteDataplane` starts dataplane-server.ts under
 * `nsenter --net=/run/netns/<ns>` (same node and loader flags) and calls it
 * with JSON lines on stdin; the server answers on stdout, each reply line
 * marked (tap writes its own lines there too).
 */
import type { ChildProcessByStdio } from 'node:child_process';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Dataplane } from '../../../src/dataplane/dataplane.js';

const SERVER = fileURLToPath(new URL('./dataplane-server.ts', import.meta.url));

// ------------------------------------------------ dataplane over stdin/stdout

/** Marks our reply lines on stdout (tap writes its own lines there too). */
export const REPLY_MARK = '@@tsoverlay-dp ';
export const REMOTE_METHODS = [
  'resolveUnderlay',
  'listOwnedLinks',
  'ensureNetwork',
  'ensureEndpoint',
  'deleteLink',
  'listForwarding',
  'addFdb',
  'deleteFdb',
  'addNeigh',
  'deleteNeigh',
  'ensureBridgeAddress',
  'ensureSourceRule',
  'listTableRoutes',
  'ensureTableRoute',
  'deleteTableRoute',
] as const;
export type RemoteMethod = (typeof REMOTE_METHODS)[number];
export interface RemoteCall {
  id: number;
  method: RemoteMethod;
  args: unknown[];
}
export type RemoteReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; code: unknown; message: string };


/** The client side: a NetlinkDataplane running in namespace `ns`. */
export class RemoteDataplane {
  private readonly child: ChildProcessByStdio<Writable, Readable, null>;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly exited: Promise<void>;
  private nextId = 1;

  constructor(readonly ns: string) {
    this.child = spawn('nsenter', [`--net=/run/netns/${ns}`, process.execPath, ...process.execArgv, SERVER], {
      env: { ...process.env, TSOVERLAY_DP_SERVER: ns },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', () => {
        for (const p of this.pending.values()) p.reject(new Error(`dataplane server in ${ns} exited`));
        this.pending.clear();
        resolve();
      });
    });
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      if (!line.startsWith(REPLY_MARK)) return;
      const reply = JSON.parse(line.slice(REPLY_MARK.length)) as RemoteReply;
      const p = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (!p) return;
      if (reply.ok) p.resolve(reply.value);
      else p.reject(Object.assign(new Error(reply.message), { code: reply.code }));
    });
  }

  call<M extends RemoteMethod>(method: M, ...args: Parameters<Dataplane[M]>): ReturnType<Dataplane[M]> {
    const id = this.nextId++;
    const result = new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const call: RemoteCall = { id, method, args };
      this.child.stdin.write(`${JSON.stringify(call)}\n`);
    });
    return result as ReturnType<Dataplane[M]>;
  }

  /** End the server (it closes its socket and exits); kill it if it hangs. */
  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}
