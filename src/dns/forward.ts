/**
 * Forwarding one query to one upstream resolver, unchanged, over UDP or TCP.
 * Each call uses its own socket (a connected UDP socket, so a dead upstream
 * on a reachable host fails at once with ECONNREFUSED instead of timing out)
 * and settles exactly once: with the upstream's reply bytes (same id as the
 * query), or with an error on timeout, refusal or abort.
 */
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import type { Upstream } from './upstreams.js';
import { isReplyTo } from './wire.js';

export interface ForwardOptions {
  timeoutMs: number;
  signal: AbortSignal;
}

type Settle = (err: Error | undefined, reply?: Buffer) => void;

/** Runs `start` with a one-shot settle, a timeout and abort handling; `cleanup` always runs once. */
const oneShot = (opts: ForwardOptions, what: string, start: (settle: Settle) => () => void): Promise<Buffer> =>
  new Promise<Buffer>((resolve, reject) => {
    let done = false;
    let cleanup: () => void = () => {};
    const settle: Settle = (err, reply) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      opts.signal.removeEventListener('abort', onAbort);
      try {
        cleanup();
      } catch {
        // closing an already closed socket: nothing to do
      }
      if (err !== undefined || reply === undefined) reject(err ?? new Error(`${what}: no reply`));
      else resolve(reply);
    };
    const onAbort = (): void => settle(new Error(`${what}: aborted`));
    const timer = setTimeout(() => settle(new Error(`${what}: timed out after ${opts.timeoutMs} ms`)), opts.timeoutMs);
    if (opts.signal.aborted) {
      settle(new Error(`${what}: aborted`));
      return;
    }
    opts.signal.addEventListener('abort', onAbort);
    try {
      cleanup = start(settle);
    } catch (e) {
      settle(e instanceof Error ? e : new Error(String(e)));
    }
  });

const label = (proto: string, up: Upstream): string =>
  `${proto} upstream ${up.family === 6 ? `[${up.host}]` : up.host}:${up.port}`;

export const forwardUdp = (query: Buffer, up: Upstream, opts: ForwardOptions): Promise<Buffer> => {
  const what = label('udp', up);
  return oneShot(opts, what, (settle) => {
    const sock = createSocket(up.family === 6 ? 'udp6' : 'udp4');
    sock.on('error', (err) => settle(err));
    sock.on('message', (msg) => {
      if (isReplyTo(query, msg)) settle(undefined, msg);
    });
    sock.connect(up.port, up.host, () => {
      try {
        sock.send(query, (err) => {
          if (err) settle(err);
        });
      } catch (e) {
        // closed meanwhile (timeout or abort)
        settle(e instanceof Error ? e : new Error(String(e)));
      }
    });
    return () => sock.close();
  });
};

export const forwardTcp = (query: Buffer, up: Upstream, opts: ForwardOptions): Promise<Buffer> => {
  const what = label('tcp', up);
  return oneShot(opts, what, (settle) => {
    let buf: Buffer = Buffer.alloc(0);
    const sock = connect({ host: up.host, port: up.port });
    sock.on('error', (err) => settle(err));
    sock.on('close', () => settle(new Error(`${what}: connection closed without a reply`)));
    sock.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(query.length);
      sock.write(Buffer.concat([len, query]));
    });
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2) {
        const n = buf.readUInt16BE(0);
        if (buf.length < 2 + n) return;
        const msg = buf.subarray(2, 2 + n);
        buf = buf.subarray(2 + n);
        if (isReplyTo(query, msg)) {
          settle(undefined, Buffer.from(msg));
          return;
        }
      }
    });
    return () => sock.destroy();
  });
};
