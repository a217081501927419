/**
 * Secret files (credentials, private keys): read only if they are regular
 * files owned by root with mode 0600 or 0400, so no other user could have
 * read or planted them. Anything else is refused with an error that names
 * the file, what is wrong and the fix. The content never appears in an
 * error or a log.
 *
 *   const text = await readSecretFile('/etc/tsoverlay/zk-auth', '--zk-auth-file');
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

export class SecretFileError extends Error {
  override readonly name = 'SecretFileError';
}

const ALLOWED_MODES = new Set([0o600, 0o400]);

const octal = (mode: number): string => `0${(mode & 0o7777).toString(8).padStart(3, '0')}`;

/**
 * The content of a secret file, after checking (on the opened file, so it
 * cannot be swapped in between) that it is a regular file, not a symbolic
 * link, owned by root (uid 0), with mode 0600 or 0400.
 */
export const readSecretFile = async (path: string, setting: string): Promise<string> => {
  const fix = `fix: chown root:root ${path} && chmod 600 ${path}`;
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new SecretFileError(`${setting} ${path} is a symbolic link: give the file itself (${fix})`);
    throw new SecretFileError(`${setting} ${path} cannot be opened (${code ?? (e as Error).message})`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new SecretFileError(`${setting} ${path} is not a regular file`);
    const mode = st.mode & 0o7777;
    if (st.uid !== 0 || !ALLOWED_MODES.has(mode)) {
      throw new SecretFileError(
        `${setting} ${path} has mode ${octal(mode)} and owner uid ${st.uid}: a secret file must be owned by root with mode 0600 or 0400 (${fix})`,
      );
    }
    return await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
};

/** Digest credentials of ZooKeeper: `user:password`. */
export interface DigestCredentials {
  user: string;
  password: string;
}

/**
 * Parse the one line `user:password` of a credentials file (surrounding
 * white space trimmed). The error never quotes the content.
 */
export const parseDigestCredentials = (text: string, path: string, setting: string): DigestCredentials => {
  const line = text.trim();
  const bad = (why: string): SecretFileError => new SecretFileError(`${setting} ${path}: ${why}; expected one line "user:password"`);
  if (line.includes('\n')) throw bad('more than one line');
  const colon = line.indexOf(':');
  if (colon < 0) throw bad('no ":" between user and password');
  const user = line.slice(0, colon);
  const password = line.slice(colon + 1);
  if (user === '' || password === '') throw bad('empty user or password');
  if (/\s/.test(user)) throw bad('white space in the user name');
  return { user, password };
};

/** Read and check a digest credentials file (see readSecretFile). */
export const readDigestCredentials = async (path: string, setting: string): Promise<DigestCredentials> =>
  parseDigestCredentials(await readSecretFile(path, setting), path, setting);
