/**
 * What a store change concerns, so that each loop looks again only at that:
 * the networks it touches (their endpoints, published names, record), or the
 * whole cluster. Decided from the path of the watch that fired (a watch
 * names one path) or by the driver that made the change.
 *
 *   /endpoints/<key>[/…], /dnsnames/<key>[/…]  → network <key>
 *   /networks/<key>                             → network <key>, its record changed
 *   /nodes, /networks (the list), /pools, /cluster, anything else → the whole cluster
 *
 * A scoped change never says anything about networks outside its scope:
 * a loop that follows it must leave those as they are. Changes waiting for
 * a loop's next pass are merged (PendingChanges); the whole cluster absorbs
 * every scope.
 */

export type StoreChange =
  | { readonly whole: true }
  | {
      readonly whole: false;
      /** Network keys whose endpoints, names or record changed. */
      readonly networks: ReadonlySet<string>;
      /** Of those, the networks whose record itself changed (created, aliases, deleted, named). */
      readonly records: ReadonlySet<string>;
    };

export const WHOLE_CLUSTER: StoreChange = { whole: true };

/** A change of network `key`: its endpoints or names, or (record: true) its record too. */
export const networkChange = (key: string, opts: { record?: boolean } = {}): StoreChange => ({
  whole: false,
  networks: new Set([key]),
  records: new Set(opts.record ? [key] : []),
});

/** The scope of a change seen by the watch on `path`. */
export const changeOfPath = (path: string): StoreChange => {
  const [top, key, ...rest] = path.split('/').slice(1);
  if (!key) return WHOLE_CLUSTER; // a root folder: /nodes, /networks, … (a network came or went)
  switch (top) {
    case 'endpoints':
    case 'dnsnames':
      return networkChange(key);
    case 'networks':
      return rest.length === 0 ? networkChange(key, { record: true }) : WHOLE_CLUSTER;
    default:
      return WHOLE_CLUSTER;
  }
};

/** Both changes at once. */
export const mergeChanges = (a: StoreChange, b: StoreChange): StoreChange => {
  if (a.whole || b.whole) return WHOLE_CLUSTER;
  return { whole: false, networks: new Set([...a.networks, ...b.networks]), records: new Set([...a.records, ...b.records]) };
};

/** Whether the change may have changed a network record (or anything at all: the whole cluster). */
export const touchesRecords = (c: StoreChange): boolean => c.whole || c.records.size > 0;

/**
 * Changes a loop has not looked at yet. `take` hands them over for a pass
 * and starts afresh; nothing pending (a periodic or retried pass) reads as
 * the whole cluster.
 */
export class PendingChanges {
  private pending: StoreChange | undefined;

  add(change: StoreChange): void {
    this.pending = this.pending ? mergeChanges(this.pending, change) : change;
  }

  take(): StoreChange {
    const c = this.pending ?? WHOLE_CLUSTER;
    this.pending = undefined;
    return c;
  }
}
