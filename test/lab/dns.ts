// DNS inside the lab: a tiny authoritative server to stand in for "the
// internet's" resolver (run in the switch namespace, so that a plugin's
// --dns-upstream and dockerd's --dns never point at a real resolver), and
// queries from any namespace -- a container's, a host's, the switch's --
// straight to some resolver with dgram/net, bypassing Docker's embedded DNS.
// All of it is test/lab/dns-tool.mjs run with this node binary under nsenter.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { run } from './proc.js';
import { Rank, StateFile, TrackedProcess } from './tracked.js';
import { StopWaiting, waitFor } from './wait.js';

export const DNS_TOOL = fileURLToPath(new URL('./dns-tool.mjs', import.meta.url));

/** How to enter a namespace with nsenter: `['-t', pid, '-n']` or `['--net=/run/netns/NAME']`. */
export type NsEnter = string[];

export const nsOfPid = (pid: number): NsEnter => ['-t', String(pid), '-n'];
export const nsNamed = (name: string): NsEnter => [`--net=/run/netns/${name}`];

export interface DnsRecord {
  type: string;
  name: string;
  data: string;
}

export interface DnsQueryOptions {
  /** A, AAAA, PTR (an IPv4 address as name becomes its in-addr.arpa name), ... (default A) */
  type?: string;
  /** wait this long for the reply (default 2000 ms) */
  timeoutMs?: number;
  tcp?: boolean;
}

export interface DnsQueryResult {
  /** a reply came */
  ok: boolean;
  /** e.g. "timeout", "ECONNREFUSED" when no reply came */
  error?: string;
  rcode: string | null;
  answers: DnsRecord[];
  name: string;
  type: string;
  server: string;
  proto: 'udp' | 'tcp';
  ms: number;
  decodeError?: string;
}

export interface DnsRawResult {
  /** hex of the reply (TCP: everything that came back), null if none */
  reply: string | null;
  error: string | null;
  /** rcode from the reply's header, if it had one */
  rcode: string | null;
  header: { id: number; qr: number; opcode: number; tc: number; rcode: string; qdcount: number; ancount: number } | null;
  sentBytes: number;
  ms: number;
}

export interface DnsPollResult {
  ok: boolean;
  /** epoch ms when the satisfying reply arrived */
  at?: number;
  error?: string;
  sent: number;
  replies: number;
  elapsedMs: number;
  last: { rcode: string; answers: DnsRecord[] } | null;
}

const toolArgs = (ns: NsEnter, args: string[]): string[] => [...ns, '--', process.execPath, DNS_TOOL, ...args];

function lastJson<T>(stdout: string, what: string, stderr: string): T {
  const line = stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (!line) throw new Error(`dns-tool ${what}: no result\nstdout: ${stdout}\nstderr: ${stderr}`);
  return JSON.parse(line) as T;
}

/** One DNS query from inside a namespace; never throws for "no answer" (ok: false). */
export async function dnsQuery(ns: NsEnter, server: string, name: string, opts: DnsQueryOptions = {}): Promise<DnsQueryResult> {
  const timeoutMs = opts.timeoutMs ?? 2000;
  const args = ['query', '--server', server, '--name', name, '--type', opts.type ?? 'A', '--timeout', String(timeoutMs)];
  if (opts.tcp) args.push('--tcp');
  const r = await run('nsenter', toolArgs(ns, args), { timeoutMs: timeoutMs + 15_000 });
  return lastJson<DnsQueryResult>(r.stdout, `query ${name}`, r.stderr);
}

/** Send raw bytes (TCP: as they are, no length prefix added) and report the first reply, if any. */
export async function dnsRaw(ns: NsEnter, server: string, bytes: Buffer, opts: { timeoutMs?: number; tcp?: boolean } = {}): Promise<DnsRawResult> {
  const [r] = await dnsRawMany(ns, server, [bytes], opts);
  return r!;
}

/** dnsRaw for several payloads at once (each from its own socket or connection); results in order. */
export async function dnsRawMany(ns: NsEnter, server: string, payloads: Buffer[], opts: { timeoutMs?: number; tcp?: boolean } = {}): Promise<DnsRawResult[]> {
  if (payloads.length === 0) return [];
  const timeoutMs = opts.timeoutMs ?? 1000;
  const args = ['raw', '--server', server, '--timeout', String(timeoutMs), ...payloads.flatMap((b) => ['--hex', b.toString('hex')])];
  if (opts.tcp) args.push('--tcp');
  const r = await run('nsenter', toolArgs(ns, args), { timeoutMs: timeoutMs + 15_000 });
  const lines = r.stdout.trim().split('\n').filter((l) => l.startsWith('{'));
  if (lines.length !== payloads.length) throw new Error(`dns-tool raw: ${lines.length} results for ${payloads.length} payloads\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return lines.map((l) => JSON.parse(l) as DnsRawResult);
}

export interface DnsPollOptions {
  type?: string;
  /** ms between queries (default 5) */
  intervalMs?: number;
  /** give up after this long (default 20000 ms) */
  deadlineMs?: number;
  /** answer: until NOERROR with a record (default); gone: until anything else */
  until?: 'answer' | 'gone';
}

/**
 * A query every few ms from inside a namespace until a reply satisfies the
 * condition: `ready` resolves (epoch ms) once its socket is up, `result`
 * with the outcome. Tracked like any lab process; `stop()` ends it early.
 */
export class DnsPoller {
  readonly ready: Promise<number>;
  readonly result: Promise<DnsPollResult>;
  private output = '';

  private constructor(readonly proc: TrackedProcess, readonly what: string) {
    let onReady: (at: number) => void = () => undefined;
    this.ready = new Promise<number>((resolve) => { onReady = resolve; });
    proc.child.stdout?.on('data', (b: Buffer) => {
      this.output += b.toString();
      const m = /\{"event":"ready","at":(\d+)\}/.exec(this.output);
      if (m) onReady(Number(m[1]));
    });
    proc.child.stderr?.on('data', (b: Buffer) => { this.output += b.toString(); });
    this.result = proc.exited.then(async () => {
      // let the stdout pipe drain
      await new Promise<void>((resolve) => {
        const out = proc.child.stdout;
        if (!out || out.readableEnded || out.destroyed) return resolve();
        const timer = setTimeout(resolve, 2000);
        out.once('close', () => { clearTimeout(timer); resolve(); });
      });
      const line = this.output.split('\n').find((l) => l.startsWith('{"event":"done"'));
      if (!line) return { ok: false, error: `poller ended without a result (${JSON.stringify(proc.exit)}): ${this.output.slice(-1000)}`, sent: 0, replies: 0, elapsedMs: 0, last: null };
      return JSON.parse(line) as DnsPollResult;
    });
    // a poller that dies before it is ready must not leave `ready` hanging
    void proc.exited.then(() => onReady(Number.NaN));
  }

  static async start(ns: NsEnter, server: string, name: string, opts: DnsPollOptions & { state: StateFile; label: string }): Promise<DnsPoller> {
    const args = ['poll', '--server', server, '--name', name, '--type', opts.type ?? 'A',
      '--interval', String(opts.intervalMs ?? 5), '--deadline', String(opts.deadlineMs ?? 20_000), '--until', opts.until ?? 'answer'];
    const proc = await TrackedProcess.spawn('nsenter', toolArgs(ns, args), { label: opts.label, rank: Rank.Probe, state: opts.state });
    return new DnsPoller(proc, `${name} at ${server}`);
  }

  /** Wait until the socket is up (bounded); throws if the poller died first. */
  async waitReady(timeoutMs = 10_000): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    const at = await Promise.race([
      this.ready,
      new Promise<number>((_, reject) => { timer = setTimeout(() => reject(new Error(`poller for ${this.what} not ready after ${timeoutMs} ms: ${this.output}`)), timeoutMs); }),
    ]).finally(() => clearTimeout(timer));
    if (Number.isNaN(at)) throw new Error(`poller for ${this.what} exited before it was ready: ${this.output}`);
    return at;
  }

  async stop(): Promise<void> {
    if (this.proc.running) await this.proc.stop(2000);
  }
}

export interface LabDnsServerOptions {
  /** name -> IPv4 (A records); every other name is NXDOMAIN. Default: outside.example -> 203.0.113.7 */
  records?: Record<string, string>;
  /** default 53 */
  port?: number;
}

export interface LabDnsQueryLog {
  proto: string;
  src: string;
  name: string;
  type: string;
  rcode: string;
}

/** The lab's stand-in for a real upstream resolver, in the switch namespace. */
export class LabDnsServer {
  static readonly DEFAULT_RECORDS: Readonly<Record<string, string>> = { 'outside.example': '203.0.113.7' };

  private constructor(
    readonly proc: TrackedProcess,
    readonly ip: string,
    readonly port: number,
    readonly records: Readonly<Record<string, string>>,
    readonly logPath: string,
  ) {}

  /** "ip" (port 53) or "ip:port": what --dns-upstream takes. */
  get address(): string {
    return this.port === 53 ? this.ip : `${this.ip}:${this.port}`;
  }

  static async start(ns: string, ip: string, opts: LabDnsServerOptions & { state: StateFile; logPath: string; label: string }): Promise<LabDnsServer> {
    const port = opts.port ?? 53;
    const records = opts.records ?? LabDnsServer.DEFAULT_RECORDS;
    const args = ['serve', '--listen', `${ip}:${port}`, ...Object.entries(records).flatMap(([n, a]) => ['--record', `${n}=${a}`])];
    const proc = await TrackedProcess.spawn('nsenter', toolArgs(nsNamed(ns), args), {
      label: opts.label, rank: Rank.Probe, state: opts.state, logPath: opts.logPath,
    });
    const s = new LabDnsServer(proc, ip, port, records, opts.logPath);
    await waitFor(async () => {
      if (!proc.running) throw new StopWaiting(`dns server exited (${JSON.stringify(proc.exit)}): ${await proc.logTail(10)}`);
      return (await readFile(opts.logPath, 'utf8').catch(() => '')).includes(`listening ${ip}:${port}`);
    }, { what: `lab dns server on ${ip}:${port}`, timeoutMs: 15_000, intervalMs: 50 }).catch(async (e: unknown) => {
      if (proc.running) await proc.stop(2000);
      throw e;
    });
    return s;
  }

  /** Every query it got so far. */
  async queries(): Promise<LabDnsQueryLog[]> {
    const text = await readFile(this.logPath, 'utf8').catch(() => '');
    const out: LabDnsQueryLog[] = [];
    for (const l of text.split('\n')) {
      const m = /^\S+ query (\S+) (\S+) (\S+) (\S+) -> (\S+)$/.exec(l);
      if (m) out.push({ proto: m[1]!, src: m[2]!, name: m[3]!, type: m[4]!, rcode: m[5]! });
    }
    return out;
  }

  get running(): boolean {
    return this.proc.running;
  }

  async stop(): Promise<{ killed: boolean }> {
    if (!this.proc.running) return { killed: false };
    return this.proc.stop(5000);
  }
}
