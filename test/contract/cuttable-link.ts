/**
 * Test helper of the ZooKeeper contract tests: a TCP proxy to ZooKeeper whose
 * link a test can cut, hold or make lose one reply.
 */
import { type Server, type Socket, connect, createServer } from 'node:net';

/**
 * A TCP link to ZooKeeper that a test can cut: while partitioned, bytes in
 * both directions are dropped and new connections are accepted but never
 * answered (a black hole, not a refusal). heal() drops every connection that
 * lived through the partition. holdNext(n) black-holes only the next n new
 * connections, as a starting ZooKeeper may (ZOOKEEPER-5051).
 */
export class CuttableLink {
  private cut = false;
  private held = 0;
  /** Bytes that mark the reply to lose (loseReplyContaining). */
  private lose: Buffer | undefined;
  private readonly sockets = new Set<Socket>();
  private constructor(
    private readonly srv: Server,
    readonly port: number,
  ) {}

  static async open(upstreamPort: number): Promise<CuttableLink> {
    const srv = createServer();
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', resolve);
    });
    const a = srv.address();
    const link = new CuttableLink(srv, typeof a === 'object' && a ? a.port : 0);
    srv.on('connection', (down) => link.accept(down, upstreamPort));
    return link;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  partition(): void {
    this.cut = true;
  }

  heal(): void {
    this.cut = false;
    this.dropAll();
  }

  /** Close every connection now; new ones are forwarded (or held) as before. */
  dropAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  /** Accept the next `n` new connections but never answer them. */
  holdNext(n: number): void {
    this.held += n;
  }

  /**
   * Lose the reply that carries `text` (e.g. the path a create made): the
   * request was applied by the server, but the connection breaks before the
   * client hears of it, as when a link fails at the wrong moment.
   */
  loseReplyContaining(text: string): void {
    this.lose = Buffer.from(text);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.srv.close(() => resolve()));
  }

  private accept(down: Socket, upstreamPort: number): void {
    this.track(down);
    if (this.cut) return; // held: never forwarded, never answered
    if (this.held > 0) {
      this.held--;
      return;
    }
    const up = connect(upstreamPort, '127.0.0.1');
    this.track(up);
    down.on('data', (d: Buffer) => void (this.cut || up.write(d)));
    up.on('data', (d: Buffer) => {
      if (this.cut) return;
      if (this.lose && d.includes(this.lose)) {
        this.lose = undefined;
        up.destroy();
        down.destroy();
        return;
      }
      down.write(d);
    });
    down.on('close', () => up.destroy());
    up.on('close', () => down.destroy());
  }

  private track(s: Socket): void {
    this.sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => this.sockets.delete(s));
  }
}

