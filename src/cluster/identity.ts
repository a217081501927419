/**
 * Cluster identity: the store carries a random id (`/cluster`), and each node
 * remembers the id of the cluster it belongs to in a local file (mode 0600).
 * A store that is empty while this node's kernel holds tsoverlay networks, or
 * that carries another cluster's id (a mistyped chroot, a wiped or foreign
 * ensemble), is refused: the node then changes nothing (kernel, store, its
 * engine), keeps its running traffic, fails Docker calls that need the store
 * with an actionable error and reports not ready, until an operator adopts
 * the store (`serve --adopt-store`).
 *
 * `decideIdentity` is the pure rule; `ClusterGuard` applies it at start and
 * re-checks the store's id on every pass, so a store that is swapped under a
 * running node (ZooKeeper restarted empty) is caught too.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { TsoverlayError } from '../errors.js';
import type { Log } from '../log.js';
import { KvConflict, type KvStore } from '../store/kv-store.js';

/** Where the store keeps its identity (under the chroot). */
export const CLUSTER_PATH = '/cluster';

export interface IdentityFacts {
  /** The id this node remembers (its local file), if any. */
  remembered: string | undefined;
  /** The id the store carries, if any. */
  stored: string | undefined;
  /** The store holds no network record. */
  storeEmpty: boolean;
  /** How many tsoverlay networks (VXLAN devices) this node's kernel holds. */
  kernelNetworks: number;
  /** The operator asked to adopt whatever the store is (--adopt-store). */
  adopt: boolean;
}

export type IdentityDecision =
  | { kind: 'use'; id: string; createInStore: boolean; remember: boolean; why: string }
  | { kind: 'refuse'; reason: string };

/** The error every call that needs a refused store gets (the Docker edge, assertOk). */
export const refusedError = (reason: string): TsoverlayError =>
  new TsoverlayError('STORE_REFUSED', `cluster store refused: ${reason}; nothing was changed; ${ADOPT_HINT}`);

export const ADOPT_HINT =
  'if this is the right store, restart the plugin with --adopt-store (TSOVERLAY_ADOPT_STORE=1); see docs/cluster-state.md';

/** The rule (docs/cluster-state.md, "Cluster identity"). */
export const decideIdentity = (f: IdentityFacts, newId: () => string = randomUUID): IdentityDecision => {
  if (f.adopt) {
    const id = f.stored ?? newId();
    return { kind: 'use', id, createInStore: f.stored === undefined, remember: f.remembered !== id, why: 'adopted by the operator (--adopt-store)' };
  }
  if (f.stored !== undefined) {
    if (f.remembered === undefined) return { kind: 'use', id: f.stored, createInStore: false, remember: true, why: 'joined the cluster' };
    if (f.remembered === f.stored) return { kind: 'use', id: f.stored, createInStore: false, remember: false, why: 'same cluster' };
    return {
      kind: 'refuse',
      reason: `the store belongs to cluster ${f.stored}, but this node belongs to cluster ${f.remembered} (a wrong --store or chroot?)`,
    };
  }
  // The store has no identity.
  if (f.kernelNetworks > 0 && (f.storeEmpty || f.remembered !== undefined)) {
    return {
      kind: 'refuse',
      reason: f.storeEmpty
        ? `the store is empty, but this node's kernel holds ${f.kernelNetworks} tsoverlay network(s) (a wrong --store or chroot, or a wiped ensemble?)`
        : `the store has no cluster identity, but this node belongs to cluster ${f.remembered} (a wrong --store or chroot?)`,
    };
  }
  if (f.remembered !== undefined && !f.storeEmpty) {
    return { kind: 'refuse', reason: `the store has no cluster identity, but this node belongs to cluster ${f.remembered}` };
  }
  const id = newId();
  return {
    kind: 'use',
    id,
    createInStore: true,
    remember: true,
    why: f.storeEmpty ? 'new cluster' : 'existing store without an identity (written by an older version)',
  };
};

// ---- the local file -----------------------------------------------------

export const readRememberedId = async (file: string): Promise<string | undefined> => {
  try {
    const id = (await readFile(file, 'utf8')).trim();
    return id === '' ? undefined : id;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new TsoverlayError('INVALID_OPTION', `cannot read the cluster id file ${file}: ${(e as Error).message}`, { cause: e });
  }
};

export const rememberId = async (file: string, id: string): Promise<void> => {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, `${id}\n`, { mode: 0o600 });
  await rename(tmp, file);
};

// ---- the store's id -----------------------------------------------------

interface StoredIdentity {
  id: string;
  createdAt: string;
}

const parseStored = (data: string): string | undefined => {
  try {
    const v = JSON.parse(data) as Partial<StoredIdentity>;
    return typeof v.id === 'string' && v.id !== '' ? v.id : undefined;
  } catch {
    return undefined;
  }
};

export const readStoredId = async (kv: KvStore): Promise<string | undefined> => {
  const v = await kv.get(CLUSTER_PATH);
  return v ? parseStored(v.data) : undefined;
};

/** Create the store's identity; if another node won the race, return its id. */
export const createStoredId = async (kv: KvStore, id: string): Promise<string> => {
  try {
    await kv.commit([{ type: 'create', path: CLUSTER_PATH, data: JSON.stringify({ id, createdAt: new Date().toISOString() }) }]);
    return id;
  } catch (e) {
    if (!(e instanceof KvConflict && e.reason === 'exists')) throw e;
    const other = await readStoredId(kv);
    if (!other) throw new TsoverlayError('STORE_CONFLICT', `${CLUSTER_PATH} exists but holds no cluster id`);
    return other;
  }
};

// ---- the guard ------------------------------------------------------------

/** Id files whose store is refused right now (process-wide, so retries log the refusal once). */
const refusing = new Set<string>();

export interface ClusterGuardDeps {
  kv: KvStore;
  /** The local file holding the remembered id. */
  file: string;
  adopt: boolean;
  /** Number of tsoverlay networks in this node's kernel (VXLAN devices). */
  kernelNetworks: () => Promise<number>;
  /** Whether the store holds any network record. */
  storeHasNetworks: () => Promise<boolean>;
  log: Log;
}

export type GuardState = { ok: true; id: string } | { ok: false; reason: string };

/**
 * Holds the verdict on the store. `establish()` decides at start (and again
 * after a refusal, so a corrected store is taken without a restart);
 * `check()` re-reads the store's id before a pass and refuses if it changed.
 */
export class ClusterGuard {
  #state: GuardState = { ok: false, reason: 'the cluster store was not checked yet' };

  constructor(private readonly deps: ClusterGuardDeps) {}

  get state(): GuardState {
    return this.#state;
  }

  /** Throws the actionable error Docker calls return while the store is refused. */
  assertOk(): void {
    const s = this.#state;
    if (!s.ok) throw refusedError(s.reason);
  }

  /** Decide (or re-decide) whether this store is ours; writes the id where the rule says. */
  async establish(): Promise<GuardState> {
    const { kv, file, adopt, log } = this.deps;
    const [remembered, stored, hasNetworks, kernelNetworks] = await Promise.all([
      readRememberedId(file),
      readStoredId(kv),
      this.deps.storeHasNetworks(),
      this.deps.kernelNetworks(),
    ]);
    const d = decideIdentity({ remembered, stored, storeEmpty: !hasNetworks, kernelNetworks, adopt });
    if (d.kind === 'refuse') return this.refuse(d.reason);
    const id = d.createInStore ? await createStoredId(kv, d.id) : d.id;
    if (id !== d.id) return this.establish(); // another node created it first: decide again with its id
    if (d.remember) await rememberId(file, id);
    if (!this.#state.ok || this.#state.id !== id) log.info({ cluster: id, remembered: remembered ?? null }, `cluster store accepted: ${d.why}`);
    this.#state = { ok: true, id };
    refusing.delete(this.deps.file);
    return this.#state;
  }

  /** Before a pass: the store must still carry our id. A refused guard tries to establish again. */
  async check(): Promise<GuardState> {
    const s = this.#state;
    if (!s.ok) return this.establish();
    const stored = await readStoredId(this.deps.kv);
    if (stored === s.id) return s;
    return this.refuse(
      stored === undefined
        ? `the store lost its cluster identity (was ${s.id}): it was wiped, restored from elsewhere or replaced`
        : `the store now belongs to cluster ${stored}, not ${s.id}`,
    );
  }

  private refuse(reason: string): GuardState {
    if (this.#state.ok || !refusing.has(this.deps.file)) {
      // once per refusal, however many passes (or start attempts) meet it again
      this.deps.log.error({ reason }, `cluster store refused: ${reason}; nothing is changed on this node and running traffic is kept; ${ADOPT_HINT}`);
      refusing.add(this.deps.file);
    }
    if (this.#state.ok || this.#state.reason.startsWith('the cluster store was not checked')) this.#state = { ok: false, reason };
    return this.#state;
  }
}
