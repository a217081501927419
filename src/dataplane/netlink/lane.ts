/**
 * The rtnetlink sockets and their request queues: every request of the
 * netlink adapter goes through `NetlinkRequests.exec`, strictly one at a
 * time per socket, with a timeout, its failure mapped to a `TsoverlayError`
 * (`<operation> <device>: <errno>`).
 *
 * Why a queue: the `netlink` package pairs replies with requests by
 * sequence number, but keeps a single "multipart in progress" buffer per
 * socket, and the kernel answers a second dump on a socket that is still
 * dumping with EBUSY, so concurrent dumps on one socket break. Each request
 * takes microseconds. After a timeout the socket may still deliver the late
 * answer (or half a dump): it is dropped and a fresh one opened on the next
 * request.
 */
import { createRtNetlink, type RequestOptions, type RtNetlinkSocket } from 'netlink';
import { TsoverlayError } from '../../errors.js';
import type { Log } from '../../log.js';
import { kernelFailure, toKernelError } from './kernel-error.js';

/** The options every request gets: the adapter's timeout. */
export type TimedOptions = RequestOptions & { timeout: number };

/** The adapter's request runner: one request at a time, with timeout and error mapping. */
export type Exec = <T>(
  operation: string,
  device: string,
  fn: (s: RtNetlinkSocket, o: TimedOptions) => Promise<T>,
  detail?: string,
) => Promise<T>;

export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;

/** One rtnetlink socket and the queue of requests on it (one at a time). */
export class Lane {
  private socket: RtNetlinkSocket | undefined;
  /** Tail of the request queue; never rejects. */
  private queue: Promise<unknown> = Promise.resolve();

  run<T>(fn: (socket: RtNetlinkSocket) => Promise<T>, log: Log): Promise<T> {
    const result = this.queue.then(() => fn(this.open(log)));
    this.queue = result.catch(() => undefined);
    return result;
  }

  async close(): Promise<void> {
    await this.queue;
    const s = this.socket;
    this.socket = undefined;
    s?.socket.close();
  }

  drop(socket: RtNetlinkSocket): void {
    if (this.socket !== socket) return; // already dropped
    this.socket = undefined;
    socket.socket.close();
  }

  private open(log: Log): RtNetlinkSocket {
    if (this.socket) return this.socket;
    let socket: RtNetlinkSocket;
    try {
      socket = createRtNetlink();
    } catch (e) {
      throw kernelFailure('open', 'rtnetlink socket', e);
    }
    // Without a listener an 'error' event would crash the process.
    socket.socket.on('error', (err) => {
      log.warn({ err }, 'rtnetlink socket error; opening a new socket for the next request');
      this.drop(socket);
    });
    this.socket = socket;
    return socket;
  }
}

/**
 * Two sockets, each with its own queue: dumps (the reconciler reading the
 * whole kernel, thousands of links or entries) go on one, everything else
 * (a Docker call making a veth, an entry being added) on the other, so a
 * container attach never waits behind a dump. No I/O in the constructor:
 * a socket is opened by its first request.
 */
export class NetlinkRequests {
  private readonly lanes = { dump: new Lane(), change: new Lane() };
  readonly timeoutMs: number;

  constructor(
    private readonly log: Log,
    timeoutMs: number = DEFAULT_REQUEST_TIMEOUT_MS,
  ) {
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
      throw new TsoverlayError('INVALID_OPTION', `requestTimeoutMs must be a positive integer, got ${timeoutMs}`);
    }
    this.timeoutMs = timeoutMs;
  }

  /** Run one request on its lane's socket (an operation starting with "dump" on the dump lane). */
  readonly exec: Exec = (operation, device, fn, detail) => {
    const lane = operation.startsWith('dump') ? this.lanes.dump : this.lanes.change;
    return lane.run(async (socket) => {
      try {
        return await fn(socket, { timeout: this.timeoutMs });
      } catch (e) {
        const ke = toKernelError(e);
        // A kernel errno leaves the socket clean; a timeout or a protocol
        // surprise may leave a late reply or half a dump queued on it.
        if (ke.errno === 'ETIMEDOUT' || ke.errno === 'EUNKNOWN') lane.drop(socket);
        throw kernelFailure(operation, device, ke, ke.errno === 'ETIMEDOUT' ? `no answer within ${this.timeoutMs} ms` : detail);
      }
    }, this.log);
  };

  /** Close the sockets (after queued requests finish). A later request opens a new one. */
  async close(): Promise<void> {
    await Promise.all(Object.values(this.lanes).map((l) => l.close()));
  }
}
