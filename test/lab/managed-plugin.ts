// tsoverlay as a managed (v2) plugin on lab hosts: build it with
// plugin/build.sh (the rootfs is cached across runs), and look at an
// installed plugin from the outside -- its settings, its process (found
// through /proc: cmdline, network namespace, TSOVERLAY_NODE_NAME), its
// capabilities, and its lines in the host's dockerd.log.
//
//   const b = await buildPluginDir();                                   // rootfs in the cache dir
//   await buildPluginDir({ name: ref, dockerHost: `unix://${h1.dockerSock}`, env: h1.dockerEnv() })  // + plugin create
//   const p = await managedPluginProcess(h1, ref);                      // { pid, capEff, ... }
import { readFile, readdir, readlink, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LabHost } from './host.js';
import { CommandError, run } from './proc.js';
import { waitFor } from './wait.js';

const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const PLUGIN_BUILD_SCRIPT = join(repoRoot, 'plugin', 'build.sh');

/**
 * Where the plugin directory (config.json + rootfs) is built and kept between
 * runs: $TSL_PLUGIN_CACHE, else <$TSL_BASE_DIR or /tmp>/tsoverlay-plugin-cache.
 * build.sh rebuilds it only when its inputs changed.
 */
export function pluginCacheDir(): string {
  return process.env['TSL_PLUGIN_CACHE'] ?? join(process.env['TSL_BASE_DIR'] ?? '/tmp', 'tsoverlay-plugin-cache');
}

export interface BuildPluginOptions {
  /** plugin directory (default pluginCacheDir()) */
  out?: string;
  /** `docker plugin create NAME` after the build (default: no create) */
  name?: string;
  /** engine for the create, e.g. unix://<host>/docker.sock */
  dockerHost?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

export interface BuildPluginResult {
  dir: string;
  /** build.sh's summary lines */
  summary: string;
  /** rootfs size in bytes */
  rootfsBytes: number;
  /** wall time of build.sh */
  ms: number;
  /** false when an up-to-date rootfs was reused */
  built: boolean;
  /** seconds build.sh reported for the create step, if it ran one */
  createSeconds?: number;
}

/** Run plugin/build.sh (quiet); throws with its output on failure. */
export async function buildPluginDir(opts: BuildPluginOptions = {}): Promise<BuildPluginResult> {
  const dir = opts.out ?? pluginCacheDir();
  const args = [PLUGIN_BUILD_SCRIPT, '--out', dir, '--quiet'];
  if (opts.name) {
    args.push('--name', opts.name);
    if (opts.dockerHost) args.push('-H', opts.dockerHost);
  } else {
    args.push('--no-create');
  }
  const t0 = Date.now();
  const r = await run('bash', args, { timeoutMs: opts.timeoutMs ?? 180_000, env: opts.env ?? process.env });
  const ms = Date.now() - t0;
  if (r.code !== 0) throw new CommandError(r);
  const summary = r.stdout.trim();
  const size = /rootfs \S+: ([\d.]+) MB/.exec(summary)?.[1];
  const created = /created \(disabled\) in ([\d.]+) s/.exec(summary)?.[1];
  return {
    dir,
    summary,
    rootfsBytes: size ? Math.round(Number(size) * 1048576) : 0,
    ms,
    built: /; built in /.test(summary),
    ...(created ? { createSeconds: Number(created) } : {}),
  };
}

export interface PluginInspect {
  Id: string;
  Name: string;
  Enabled: boolean;
  PluginReference: string;
  Settings: { Env: string[]; Args: string[]; Mounts: Array<{ Name: string; Source: string | null; Destination: string }> };
  Config: { Description: string; Entrypoint: string[]; Linux: { Capabilities: string[] | null } };
}

export async function inspectPlugin(h: LabHost, ref: string): Promise<PluginInspect> {
  return (JSON.parse(await h.docker('plugin', 'inspect', ref)) as PluginInspect[])[0]!;
}

/** The plugin's env as the engine will give it (Settings.Env), as a map. */
export function pluginEnv(p: PluginInspect): Map<string, string> {
  return new Map(p.Settings.Env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
}

export interface PluginProcess {
  pid: number;
  /** effective capabilities (hex mask from /proc/PID/status) */
  capEff: bigint;
  env: Map<string, string>;
}

/** Linux capability numbers (include/uapi/linux/capability.h) */
export const CAP = { NET_BIND_SERVICE: 10, NET_ADMIN: 12, NET_RAW: 13, SYS_ADMIN: 21 } as const;

export function hasCap(p: PluginProcess, cap: number): boolean {
  return ((p.capEff >> BigInt(cap)) & 1n) === 1n;
}

/**
 * The running plugin process of a lab host: `node /app/dist/cli.js serve` in
 * the host's network namespace whose TSOVERLAY_NODE_NAME is `nodeName`.
 * Undefined if none runs.
 */
export async function findPluginProcess(h: LabHost, nodeName: string): Promise<PluginProcess | undefined> {
  // /proc/PID/ns/net reads "net:[<inode>]"; the inode is that of /run/netns/<ns>
  const hostNetIno = `net:[${(await stat(`/run/netns/${h.ns}`)).ino}]`;
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const cmd = await readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '');
    // /usr/bin/node [node flags from config.json] /app/dist/cli.js serve
    const argv = cmd.split('\0').slice(0, -1);
    if (argv[0] !== '/usr/bin/node' || argv.at(-2) !== '/app/dist/cli.js' || argv.at(-1) !== 'serve') continue;
    if ((await readlink(`/proc/${e}/ns/net`).catch(() => '')) !== hostNetIno) continue;
    const envText = await readFile(`/proc/${e}/environ`, 'utf8').catch(() => '');
    const env = new Map(envText.split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    if (env.get('TSOVERLAY_NODE_NAME') !== nodeName) continue;
    const status = await readFile(`/proc/${e}/status`, 'utf8').catch(() => '');
    const cap = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    if (!cap) continue;
    return { pid: Number(e), capEff: BigInt(`0x${cap}`), env };
  }
  return undefined;
}

/** Wait until the plugin process runs (e.g. after enable or a dockerd restart). */
export function waitPluginProcess(h: LabHost, nodeName: string, timeoutMs = 30_000): Promise<PluginProcess> {
  return waitFor(async () => findPluginProcess(h, nodeName), {
    what: `the managed plugin process of ${h.name} (TSOVERLAY_NODE_NAME=${nodeName})`, timeoutMs,
  }) as Promise<PluginProcess>;
}

/**
 * Lines of the host's dockerd.log that carry the plugin's own output: dockerd
 * logs each line a plugin writes with a `plugin=<id>` field.
 */
export async function pluginLinesInDockerdLog(h: LabHost, pluginId: string): Promise<string[]> {
  const text = await readFile(h.dockerdLog, 'utf8').catch(() => '');
  return text.split('\n').filter((l) => l.includes(`plugin=${pluginId}`));
}

/** The docker CLI's environment for build.sh's `plugin create`: the lab's own CLI config (`<lab dir>/docker-cli`), no DOCKER_HOST. */
export function labCliEnv(labDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_CONFIG: join(labDir, 'docker-cli') };
  for (const k of ['DOCKER_HOST', 'DOCKER_CONTEXT', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH']) delete env[k];
  return env;
}
