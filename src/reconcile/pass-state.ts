/**
 * Everything one reconcile pass learns and counts, in one object that the
 * steps (observe, devices, forwarding, firewall, resolver) share and nothing
 * outside the pass keeps. What lasts from pass to pass (the last applied
 * state, verified forwarding, check times) stays in the Reconciler.
 */
import type { Dataplane, ObservedLink } from '../dataplane/dataplane.js';
import type { Log } from '../log.js';
import type { Desired } from './desired.js';

/** What the steps of a pass use of the world: the kernel and a logger. */
export interface PassIo {
  dataplane: Dataplane;
  log: Log;
}

export interface PassState {
  /** A full pass reads the kernel back; a delta pass plans from `previous`. */
  readonly full: boolean;
  /**
   * A pass scoped to some networks (partial.ts): their VXLAN devices. The
   * forwarding step looks at these alone; undefined: at every device.
   */
  readonly scope?: ReadonlySet<string>;
  /** What the last pass without failures made true (undefined: none yet, or it failed). */
  readonly previous: Desired | undefined;
  readonly desired: Desired;
  /** Our links as read at the start of a full pass; the resolver step reads them if still unset. */
  observed: ObservedLink[] | undefined;
  /** When the pass began acting (after its reads): a full pass counts from here. */
  readonly startedAt: number;
  /** Actions applied and failed (a batch of entries counts each entry). */
  done: number;
  failed: number;
  /** VXLAN devices whose ensure failed: their entries wait for the next pass. */
  readonly broken: Set<string>;
  /** VXLAN devices ensured in this pass: their entries are read back. */
  readonly remade: Set<string>;
  /** VXLAN devices created in this pass: they have no entries to read back. */
  readonly fresh: Set<string>;
  /** Milliseconds per phase, for the pass's log line. */
  readonly ms: Record<string, number>;
  /** Close the current phase under `name` (its time since the last lap). */
  lap(name: string): void;
}

/** A stopwatch of named phases; the pass state takes it over after observing. */
export const stopwatch = (): { ms: Record<string, number>; lap(name: string): void } => {
  const ms: Record<string, number> = {};
  let last = performance.now();
  return {
    ms,
    lap(name: string): void {
      const now = performance.now();
      ms[name] = Math.round(now - last);
      last = now;
    },
  };
};

export const newPassState = (init: {
  full: boolean;
  scope?: ReadonlySet<string> | undefined;
  previous: Desired | undefined;
  desired: Desired;
  observed: ObservedLink[] | undefined;
  clock: ReturnType<typeof stopwatch>;
}): PassState => ({
  full: init.full,
  ...(init.scope ? { scope: init.scope } : {}),
  previous: init.previous,
  desired: init.desired,
  observed: init.observed,
  startedAt: Date.now(),
  done: 0,
  failed: 0,
  broken: new Set(),
  remade: new Set(),
  fresh: new Set(),
  ms: init.clock.ms,
  lap: init.clock.lap,
});
