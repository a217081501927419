/**
 * One DNS-over-TCP connection (RFC 7766): 2-byte length framing, several
 * queries per connection answered as they complete (possibly out of order),
 * a bounded number in flight (reading pauses beyond it), an idle timeout,
 * zero-length frames ignored, and a graceful close after the client's FIN
 * once every pending answer is written. Never throws out of a handler.
 */
import type { Socket } from 'node:net';

export interface TcpConnOptions {
  idleMs: number;
  /** Queries of this connection in flight at once (default 16). */
  maxPipeline?: number;
  respond: (frame: Buffer, source: string) => Promise<Buffer | undefined>;
  log: { debug(obj: object, msg: string): void };
}

export const serveTcp = (sock: Socket, opts: TcpConnOptions): void => {
  const source = sock.remoteAddress;
  if (source === undefined) {
    sock.destroy();
    return;
  }
  const maxPipeline = opts.maxPipeline ?? 16;
  let buf: Buffer = Buffer.alloc(0);
  let pending = 0;
  let ended = false;

  const fail = (err: unknown): void => {
    opts.log.debug({ source, err: String(err) }, 'dns tcp connection dropped');
    sock.destroy();
  };

  const finishIfDone = (): void => {
    if (ended && pending === 0 && !sock.destroyed) sock.end();
  };

  const send = (reply: Buffer | undefined): void => {
    if (reply === undefined || reply.length > 0xffff || sock.destroyed || !sock.writable) return;
    const len = Buffer.alloc(2);
    len.writeUInt16BE(reply.length);
    sock.write(Buffer.concat([len, reply]));
  };

  const pump = (): void => {
    while (pending < maxPipeline && buf.length >= 2) {
      const n = buf.readUInt16BE(0);
      if (buf.length < 2 + n) break;
      const frame = Buffer.from(buf.subarray(2, 2 + n));
      buf = buf.subarray(2 + n);
      if (n === 0) continue;
      pending++;
      void opts
        .respond(frame, source)
        .then(send, fail)
        .finally(() => {
          pending--;
          try {
            if (sock.isPaused() && !sock.destroyed) sock.resume();
            pump();
            finishIfDone();
          } catch (err) {
            fail(err);
          }
        })
        .catch(fail);
    }
    if (pending >= maxPipeline) sock.pause();
    finishIfDone();
  };

  sock.setNoDelay(true);
  sock.setTimeout(opts.idleMs, () => sock.destroy());
  sock.on('error', (err) => opts.log.debug({ source, err: String(err) }, 'dns tcp socket error'));
  sock.on('data', (chunk: Buffer) => {
    try {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      pump();
    } catch (err) {
      fail(err);
    }
  });
  sock.on('end', () => {
    ended = true;
    // A partial frame at FIN can never complete: drop it.
    if (pending === 0) sock.end();
  });
};
