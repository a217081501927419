/**
 * Keeps store watches on a changing set of paths (networks come and go) and
 * funnels every change into one callback that marks the loops dirty, with
 * what it concerns: the scope of the path that fired (store-change.ts).
 */
import type { ClusterState } from '../store/cluster-state.js';
import { type StoreChange, changeOfPath, mergeChanges } from './store-change.js';

export class WatchSet {
  private readonly active = new Map<string, () => void>();

  constructor(
    private readonly state: ClusterState,
    private readonly onChange: (change: StoreChange) => void,
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
    let added: StoreChange | undefined;
    for (const p of want) {
      if (this.active.has(p)) continue;
      const change = changeOfPath(p);
      this.active.set(p, this.state.watch(p, () => this.onChange(change)));
      added = added ? mergeChanges(added, change) : change;
    }
    // A change between the caller's read and this watch would go unseen:
    // look once more, at what the new watches cover, now that they are armed.
    if (added) this.onChange(added);
  }

  close(): void {
    this.sync([]);
  }
}
