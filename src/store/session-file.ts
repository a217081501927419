/**
 * Keeps the ZooKeeper session's credentials in a local file (mode 0600: the
 * password is a secret) so the next plugin process resumes the same session:
 * its ephemeral membership never disappears, and peers never drop this
 * node's forwarding entries during a restart (or after a crash, if the
 * restart comes within the session timeout).
 *
 * The file names the node and the ensemble it belongs to; another node's
 * file, or another ensemble's, is ignored. The session itself is resumed
 * whatever the chroot (a ZooKeeper session is the ensemble's; the chroot is
 * only a prefix of the client's paths): a plugin restarted with a mistyped
 * chroot keeps the node's membership in the right tree alive while it
 * refuses the wrong one (cluster/identity.ts). Saved records (the snapshot
 * below) belong to one tree and are only read back for the same chroot.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Versioned } from './kv-store.js';
import type { ZkCredentials } from './zk-session.js';

export interface SessionOwner {
  node: string;
  servers: string[];
  chroot: string;
}

interface FileFormat extends SessionOwner, ZkCredentials {
  format: 'tsoverlay-zk-session/1';
}

const sameEnsemble = (a: SessionOwner, b: SessionOwner): boolean =>
  a.node === b.node && [...a.servers].sort().join(',') === [...b.servers].sort().join(',');

const sameOwner = (a: SessionOwner, b: SessionOwner): boolean => sameEnsemble(a, b) && a.chroot === b.chroot;

/** The owner a parsed file names (whatever its fields hold). */
const ownerIn = (f: Partial<SessionOwner>): SessionOwner => ({
  node: String(f.node),
  servers: Array.isArray(f.servers) ? f.servers.map(String) : [],
  chroot: String(f.chroot),
});

export const readSession = async (file: string, owner: SessionOwner): Promise<ZkCredentials | undefined> => {
  try {
    const f = JSON.parse(await readFile(file, 'utf8')) as Partial<FileFormat>;
    if (f.format !== 'tsoverlay-zk-session/1' || typeof f.id !== 'string' || typeof f.password !== 'string') return undefined;
    if (!sameEnsemble(ownerIn(f), owner)) return undefined;
    return { id: f.id, password: f.password };
  } catch {
    return undefined; // missing or unreadable: start a new session
  }
};

export const writeSession = async (file: string, owner: SessionOwner, creds: ZkCredentials): Promise<void> => {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  const body: FileFormat = { format: 'tsoverlay-zk-session/1', ...owner, ...creds };
  await writeFile(tmp, JSON.stringify(body), { mode: 0o600 });
  await rename(tmp, file);
};

/**
 * The stable records of the read cache (endpoint records: only their own
 * node ever changes them, and Docker never reuses an endpoint id), saved at a
 * clean stop next to the session file so the next process does not read
 * thousands of them back one znode at a time. They are only a head start:
 * the first listing of each (watched) folder drops every record whose
 * endpoint is gone.
 */
interface SnapshotFormat extends SessionOwner {
  format: 'tsoverlay-records/1';
  /** path, data, version, creation stamp (a record saved without one is not taken). */
  records: Array<[string, string, number, number]>;
}

export const snapshotPath = (sessionFile: string): string => `${sessionFile}.records`;

export const readRecordSnapshot = async (file: string, owner: SessionOwner): Promise<Array<[string, Versioned]>> => {
  try {
    const f = JSON.parse(await readFile(file, 'utf8')) as Partial<SnapshotFormat>;
    if (f.format !== 'tsoverlay-records/1' || !Array.isArray(f.records)) return [];
    if (!sameOwner(ownerIn(f), owner)) return [];
    return f.records
      .filter((r): r is [string, string, number, number] =>
        Array.isArray(r) && typeof r[0] === 'string' && typeof r[1] === 'string' && Number.isInteger(r[2]) && Number.isInteger(r[3]))
      .map(([path, data, version, created]) => [path, { data, version, created }]);
  } catch {
    return []; // missing or unreadable: read everything from the store
  }
};

export const writeRecordSnapshot = async (file: string, owner: SessionOwner, records: ReadonlyArray<[string, Versioned]>): Promise<void> => {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  const body: SnapshotFormat = { format: 'tsoverlay-records/1', ...owner, records: records.map(([p, v]) => [p, v.data, v.version, v.created]) };
  await writeFile(tmp, JSON.stringify(body), { mode: 0o600 });
  await rename(tmp, file);
};
