// An offline busybox image: a root holding /bin/busybox (Debian busybox-static)
// and applet symlinks, tarred once per lab and `docker import`ed per host.
import { copyFile, mkdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sh } from './proc.js';

export const BUSYBOX_IMAGE = 'busybox:local';

const APPLETS = [
  'sh', 'ash', 'ping', 'ping6', 'ip', 'nc', 'wget', 'httpd', 'sleep', 'cat', 'ifconfig', 'route', 'ls', 'echo',
  'hostname', 'nslookup', 'ps', 'kill', 'true', 'false', 'grep', 'sed', 'awk', 'head', 'tail', 'wc', 'env', 'mkdir',
  'rm', 'cp', 'mv', 'touch', 'date', 'uname', 'id', 'netstat', 'arp', 'traceroute', 'dd', 'seq', 'tr', 'cut', 'sort',
  'uniq', 'test', '[', 'printf', 'timeout', 'xargs', 'find', 'mount', 'hexdump', 'md5sum', 'sha256sum', 'vi',
];

function busyboxPath(): string {
  return process.env['TSL_BUSYBOX'] ?? '/bin/busybox';
}

/** Build (once per directory) a tarball of a minimal busybox root; returns its path. */
const built = new Map<string, Promise<string>>();
export function buildBusyboxTarball(dir: string): Promise<string> {
  let p = built.get(dir);
  if (!p) {
    p = doBuild(dir);
    built.set(dir, p);
    p.catch(() => built.delete(dir));
  }
  return p;
}

async function doBuild(dir: string): Promise<string> {
  const src = busyboxPath();
  try {
    await stat(src);
  } catch {
    throw new Error(`${src} not found: install busybox-static (scripts/install-deps.sh)`);
  }
  const root = join(dir, 'busybox-root');
  for (const d of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev', 'root', 'var/www']) {
    await mkdir(join(root, d), { recursive: true });
  }
  await copyFile(src, join(root, 'bin/busybox'));
  for (const a of APPLETS) await symlink('busybox', join(root, 'bin', a)).catch(() => undefined);
  await writeFile(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  await writeFile(join(root, 'etc/group'), 'root:x:0:\n');
  const tar = join(dir, 'busybox.tar');
  await sh('tar', ['-C', root, '--owner=0', '--group=0', '-cf', tar, '.']);
  return tar;
}
