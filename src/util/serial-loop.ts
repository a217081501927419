/**
 * Run an async job one at a time: `trigger()` asks for a run soon (triggers
 * during a run coalesce into one more run), a timer runs it periodically,
 * and a failed run is retried with capped exponential backoff.
 */
export class SerialLoop<R> {
  private running: Promise<R> | undefined;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private stopped = false;

  constructor(
    private readonly job: () => Promise<R>,
    private readonly opts: { intervalMs: number; maxBackoffMs?: number; failed: (r: R) => boolean },
  ) {}

  /** Run once now (awaited), then keep going. */
  async start(): Promise<R> {
    const r = await this.runOnce();
    this.schedule(this.opts.failed(r));
    return r;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.running) await this.running.catch(() => undefined);
  }

  trigger(): void {
    if (this.stopped) return;
    this.dirty = true;
    if (!this.running) this.kick(0);
  }

  /** One run; a caller arriving during a run waits for it and runs again. */
  async runOnce(): Promise<R> {
    while (this.running) await this.running.catch(() => undefined);
    this.dirty = false;
    this.running = this.job().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private schedule(failed: boolean): void {
    if (this.stopped) return;
    this.failures = failed ? this.failures + 1 : 0;
    const max = this.opts.maxBackoffMs ?? 30_000;
    const delay = failed ? Math.min(500 * 2 ** (this.failures - 1), max) : this.opts.intervalMs;
    this.kick(this.dirty ? 0 : delay);
  }

  private kick(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.runOnce().then(
        (r) => this.schedule(this.opts.failed(r)),
        () => this.schedule(true),
      );
    }, delayMs);
    this.timer.unref();
  }
}
