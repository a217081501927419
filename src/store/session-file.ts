/**
 * Keeps the ZooKeeper session's credentials in a local file (mode 0600: the
 * password is a secret) so the next plugin process resumes the same session:
 * its ephemeral membership never disappears, and peers never drop this
 * node's forwarding entries during a restart (or after a crash, if the
 * restart comes within the session timeout).
 *
 * The file names the node and the ensemble it belongs to; anything else
 * (another node's file, another chroot) is ignored.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ZkCredentials } from './zk-session.js';

export interface SessionOwner {
  node: string;
  servers: string[];
  chroot: string;
}

interface FileFormat extends SessionOwner, ZkCredentials {
  format: 'tsoverlay-zk-session/1';
}

const sameOwner = (a: SessionOwner, b: SessionOwner): boolean =>
  a.node === b.node && a.chroot === b.chroot && [...a.servers].sort().join(',') === [...b.servers].sort().join(',');

export const readSession = async (file: string, owner: SessionOwner): Promise<ZkCredentials | undefined> => {
  try {
    const f = JSON.parse(await readFile(file, 'utf8')) as Partial<FileFormat>;
    if (f.format !== 'tsoverlay-zk-session/1' || typeof f.id !== 'string' || typeof f.password !== 'string') return undefined;
    if (!sameOwner({ node: String(f.node), servers: Array.isArray(f.servers) ? f.servers.map(String) : [], chroot: String(f.chroot) }, owner)) return undefined;
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
