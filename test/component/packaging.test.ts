/**
 * packaging/: the systemd unit passes `systemd-analyze verify` (where the
 * tool exists; otherwise the case is a skip, never a pass), starts the plugin
 * with the heap flags of dist/cli.js's first line, before dockerd, with the
 * settings file; the settings file names only real settings; the build leaves
 * dist/cli.js executable.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { SETTINGS } from '../../src/config.js';

const root = join(import.meta.dirname, '..', '..');
const unitPath = join(root, 'packaging', 'tsoverlay.service');
const unit = readFileSync(unitPath, 'utf8');
const defaults = readFileSync(join(root, 'packaging', 'tsoverlay.default'), 'utf8');

const run = (cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    execFile(cmd, args, { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });

const which = (name: string): string | undefined =>
  (process.env['PATH'] ?? '/usr/bin:/bin')
    .split(':')
    .map((d) => join(d, name))
    .find((p) => {
      try {
        accessSync(p, constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });

/** The directives of the unit, by name (all values of repeated ones). */
const directives = (text: string): Map<string, string[]> => {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1] ?? '', [...(out.get(m[1] ?? '') ?? []), m[2] ?? '']);
  }
  return out;
};

/** The node flags of src/cli.ts's first line (`#!/usr/bin/env -S node FLAGS`). */
const shebangFlags = (): string[] => {
  const first = readFileSync(join(root, 'src', 'cli.ts'), 'utf8').split('\n')[0] ?? '';
  const m = /^#!\/usr\/bin\/env -S node (.*)$/.exec(first);
  if (!m) throw new Error(`src/cli.ts's first line is not a node shebang: ${first}`);
  return (m[1] ?? '').trim().split(/\s+/);
};

t.test('the unit starts the plugin before dockerd, always restarts it, reads /etc/default/tsoverlay', async (t) => {
  const d = directives(unit);
  t.same(d.get('Before'), ['docker.service']);
  t.same(d.get('Restart'), ['always']);
  t.same(d.get('EnvironmentFile'), ['-/etc/default/tsoverlay'], 'optional settings file');
  const exec = d.get('ExecStart') ?? [];
  t.equal(exec.length, 1);
  const words = (exec[0] ?? '').split(/\s+/);
  t.equal(words[0], '/usr/bin/node');
  const flags = shebangFlags();
  t.ok(flags.length >= 2, `cli.ts has heap flags (${flags.join(' ')})`);
  t.same(words.slice(1, 1 + flags.length), flags, 'the same heap flags as dist/cli.js');
  t.same(words.slice(1 + flags.length), ['/opt/tsoverlay/dist/cli.js', 'serve', '$TSOVERLAY_ARGS']);
  const caps = (d.get('CapabilityBoundingSet')?.[0] ?? '').split(/\s+/);
  t.ok(caps.includes('CAP_NET_ADMIN'), 'netlink and iptables need CAP_NET_ADMIN');
  t.ok(caps.includes('CAP_NET_BIND_SERVICE'), 'the resolver binds port 53');
  t.same(d.get('RestrictAddressFamilies')?.[0]?.split(/\s+/).sort(), ['AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_UNIX']);
});

const analyze = which('systemd-analyze');
const noAnalyze = analyze ? {} : { skip: 'systemd-analyze is not installed (Debian package systemd; scripts/install-deps.sh installs it)' };
t.test('systemd-analyze verify accepts the unit', noAnalyze, async (t) => {
  const tool = analyze ?? 'systemd-analyze';
  const ok = await run(tool, ['verify', unitPath]);
  t.equal(ok.code, 0, ok.stderr);
  t.equal(ok.stderr.trim(), '', 'no warning');
  // the check can fail: a misspelt directive and a missing binary are reported
  const dir = mkdtempSync(join(tmpdir(), 'tsoverlay-unit-'));
  const bad = join(dir, 'tsoverlay.service');
  writeFileSync(bad, unit.replace('Restart=always', 'Restart=alwayz').replace('ExecStart=/usr/bin/node', 'ExecStart=/usr/bin/no-such-node'));
  const broken = await run(tool, ['verify', bad]);
  t.match(broken.stderr, /alwayz/, 'a bad value is reported');
  t.match(broken.stderr, /no-such-node/, 'a missing executable is reported');
  t.not(broken.code, 0);
});

t.test('the settings file is KEY=VALUE lines and comments, naming only real settings', async (t) => {
  const known = new Set<string>([...Object.values(SETTINGS).map((s) => s.env), 'TSOVERLAY_ARGS']);
  const named = new Set<string>();
  for (const raw of defaults.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^#(TSOVERLAY_[A-Z_]+)=/.exec(line);
      if (m) named.add(m[1] ?? '');
      continue;
    }
    t.match(line, /^TSOVERLAY_[A-Z_]+=/, `an assignment: ${line}`);
    named.add(line.slice(0, line.indexOf('=')));
  }
  t.ok(named.size >= 5, `documents the main settings (${[...named].join(', ')})`);
  for (const name of named) t.ok(known.has(name), `${name} is a setting`);
  for (const must of ['TSOVERLAY_STORE', 'TSOVERLAY_ADVERTISE']) t.ok(named.has(must), `${must} is documented`);
});

t.test('npm run build makes dist/cli.js executable', async (t) => {
  const scripts = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: { build: string }; bin: Record<string, string> };
  t.match(scripts.scripts.build, /chmodSync\('dist\/cli\.js', 0o755\)/, 'npm run build sets the mode');
  t.equal(scripts.bin['tsoverlay'], 'dist/cli.js');
});

const cli = join(root, 'dist', 'cli.js');
t.test('dist/cli.js is executable, with the heap flags', existsSync(cli) ? {} : { skip: 'dist/cli.js is not built (npm run build)' }, async (t) => {
  t.equal(statSync(cli).mode & 0o777, 0o755, 'mode 0755');
  t.equal(readFileSync(cli, 'utf8').split('\n')[0], `#!/usr/bin/env -S node ${shebangFlags().join(' ')}`);
  const help = await run(cli, ['--help']);
  t.equal(help.code, 0, help.stderr);
  t.match(help.stdout, /Usage: tsoverlay serve/, 'runs directly');
});
