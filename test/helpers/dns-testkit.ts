/**
 * Test helpers for the resolver (src/dns/*.test.ts): DNS clients over UDP/TCP and a fake
 * upstream DNS server, all on 127.0.0.1 only.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Server, type Socket } from 'node:net';
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, RecordType } from 'dns-packet';
import type { Log } from '../../src/log.js';

export const LOOPBACK = '127.0.0.1';

let nextId = 1;
export const query = (name: string, type: RecordType = 'A', opts: { id?: number; edns?: number } = {}): Buffer =>
  dnsPacket.encode({
    type: 'query',
    id: opts.id ?? (nextId = (nextId % 65535) + 1),
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type, class: 'IN' }],
    additionals:
      opts.edns === undefined
        ? []
        : [{ type: 'OPT', name: '.', udpPayloadSize: opts.edns, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }],
  });

export const decodeReply = (buf: Buffer): DecodedPacket & { rcode?: string } => dnsPacket.decode(buf);
export const idOf = (buf: Buffer): number => buf.readUInt16BE(0);

/** Send `packet` over UDP; resolve with the first reply with the same id. */
export const udpAsk = (port: number, packet: Buffer, timeoutMs = 3000): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const sock = createSocket('udp4');
    const timer = setTimeout(() => {
      sock.close();
      reject(new Error('udp query timed out'));
    }, timeoutMs);
    sock.on('message', (msg) => {
      if (msg.length >= 2 && idOf(msg) === idOf(packet)) {
        clearTimeout(timer);
        sock.close();
        resolve(msg);
      }
    });
    sock.send(packet, port, LOOPBACK);
  });

/** Fire-and-forget UDP packets from one socket (replies ignored). */
export const udpSpray = async (port: number, packets: Buffer[]): Promise<void> => {
  const sock = createSocket('udp4');
  sock.on('message', () => {});
  for (const p of packets) await new Promise<void>((resolve) => sock.send(p, port, LOOPBACK, () => resolve()));
  await new Promise<void>((resolve) => sock.close(() => resolve()));
};

export const tcpConnect = (port: number): Promise<Socket> =>
  new Promise((resolve, reject) => {
    const sock = connect({ host: LOOPBACK, port }, () => resolve(sock));
    sock.on('error', reject);
  });

export const frame = (packet: Buffer): Buffer => {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(packet.length);
  return Buffer.concat([len, packet]);
};

/** Collect `n` framed replies from `sock`. */
export const readFrames = (sock: Socket, n: number, timeoutMs = 3000): Promise<Buffer[]> =>
  new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const out: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.off('data', onData);
      reject(new Error(`tcp: got ${out.length} of ${n} replies`));
    }, timeoutMs);
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        out.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (out.length >= n) {
        clearTimeout(timer);
        sock.off('data', onData);
        resolve(out);
      }
    };
    sock.on('data', onData);
  });

export const tcpAsk = async (port: number, packets: Buffer[]): Promise<Buffer[]> => {
  const sock = await tcpConnect(port);
  try {
    const replies = readFrames(sock, packets.length);
    sock.write(Buffer.concat(packets.map(frame)));
    return await replies;
  } finally {
    sock.destroy();
  }
};

/** Resolves when the peer closes `sock` (or rejects after `timeoutMs`). */
export const closedByPeer = (sock: Socket, timeoutMs: number): Promise<void> =>
  new Promise((resolve, reject) => {
    if (sock.destroyed) return resolve();
    const timer = setTimeout(() => reject(new Error('connection still open')), timeoutMs);
    sock.on('error', () => {});
    sock.on('data', () => {});
    sock.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });

/** A fake upstream on 127.0.0.1 (UDP and TCP, same port): answers any question with `address`. */
export class FakeUpstream {
  udpQueries = 0;
  tcpQueries = 0;
  port = 0;
  #udp: UdpSocket | undefined;
  #tcp: Server | undefined;
  constructor(readonly address = '192.0.2.80') {}

  #reply(msg: Buffer): Buffer {
    const q = dnsPacket.decode(msg);
    const answers: Answer[] = (q.questions ?? []).map((x) => ({ type: 'A', name: x.name, ttl: 60, data: this.address }));
    return dnsPacket.encode({ type: 'response', id: q.id ?? 0, flags: dnsPacket.RECURSION_AVAILABLE, questions: q.questions ?? [], answers });
  }

  async start(): Promise<string> {
    for (;;) {
      const udp = createSocket('udp4');
      await new Promise<void>((resolve) => udp.bind(0, LOOPBACK, () => resolve()));
      udp.on('message', (msg, rinfo) => {
        this.udpQueries++;
        try {
          udp.send(this.#reply(msg), rinfo.port, rinfo.address);
        } catch {
          // garbage relayed from a barrage: no reply
        }
      });
      const port = udp.address().port;
      const tcp = createServer((sock) => {
        sock.on('error', () => {});
        readFrames(sock, 1).then(
          ([msg]) => {
            this.tcpQueries++;
            try {
              sock.end(frame(this.#reply(msg ?? Buffer.alloc(0))));
            } catch {
              sock.destroy();
            }
          },
          () => sock.destroy(),
        );
      });
      const ok = await new Promise<boolean>((resolve) => {
        tcp.once('error', () => resolve(false));
        tcp.listen(port, LOOPBACK, () => resolve(true));
      });
      if (ok) {
        this.#udp = udp;
        this.#tcp = tcp;
        this.port = port;
        return `${LOOPBACK}:${port}`;
      }
      udp.close();
    }
  }

  async stop(): Promise<void> {
    this.#udp?.close();
    await new Promise<void>((resolve) => (this.#tcp ? this.#tcp.close(() => resolve()) : resolve()));
  }
}

/** A port on 127.0.0.1 with nothing listening (UDP and TCP refuse at once). */
export const deadPort = async (): Promise<number> => {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, LOOPBACK, () => resolve()));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
};

export interface RecordingLog extends Log {
  entries: Array<{ level: string; obj: object; msg: string }>;
}

export const recordingLog = (): RecordingLog => {
  const entries: RecordingLog['entries'] = [];
  const at = (level: string) => (obj: object, msg: string) => void entries.push({ level, obj, msg });
  return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
};
