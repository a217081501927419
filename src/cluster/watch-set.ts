/**
 * Keeps store watches on a changing set of paths (networks come and go) and
 * funnels every change into one callback that marks the loops dirty.
 */
import type { ClusterState } from '../store/cluster-state.js';

export class WatchSet {
  private readonly active = new Map<string, () => void>();

  constructor(
    private readonly state: ClusterState,
    private readonly onChange: () => void,
  ) {}

  /** Watch exactly these paths from now on. */
  sync(paths: Iterable<string>): void {
    const want = new Set(paths);
    for (const [p, off] of this.active) {
      if (!want.has(p)) {
        off();
        this.active.delete(p);
      }
    }
    let added = false;
    for (const p of want) {
      if (this.active.has(p)) continue;
      this.active.set(p, this.state.watch(p, this.onChange));
      added = true;
    }
    // A change between the caller's read and this watch would go unseen:
    // look once more now that the watch is armed.
    if (added) this.onChange();
  }

  close(): void {
    this.sync([]);
  }
}
