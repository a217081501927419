/**
 * The `tsoverlay cleanup [--yes] [--force] [options]` command: lists what
 * cleanup.ts finds (a dry run, exit 0), removes it with --yes, and refuses
 * while the plugin answers on its socket unless --force. The serve options
 * (and TSOVERLAY_* variables) say where the socket and state files are.
 */
import { connect } from 'node:net';
import { ConfigError, loadConfig } from '../config.js';
import type { Dataplane } from '../dataplane/dataplane.js';
import type { Firewall } from '../dataplane/firewall.js';
import { applyCleanup, planCleanup } from './cleanup.js';

export const cleanupHelp = (): string =>
  [
    'Usage: tsoverlay cleanup [--yes] [--force] [serve options]',
    '',
    'Removes everything tsoverlay put on this node: its devices (tsbr-*, tsvx-*,',
    'tsh*, tsc*), the resolver\'s policy rules, table 5353 routes and address on lo,',
    'its iptables/ip6tables rules (comment "tsoverlay…"), and its state files (the',
    'embedded store, session file and saved records, cluster-id, the socket).',
    'Containers on tsoverlay networks lose their connectivity: remove them and the',
    'networks (docker network rm) first. ZooKeeper\'s cluster state is not touched.',
    '',
    'Without --yes it only lists what it would remove (and exits 0).',
    '  --yes, -y   remove it',
    '  --force     go on even though the plugin answers on its socket',
    '  --help      show this text',
    '',
    'The serve options (--socket, --store, --session-file, --cluster-id-file,',
    '--dns-address, and their TSOVERLAY_* variables) say where things are; the',
    'defaults are those of "tsoverlay serve" (tsoverlay --help).',
  ].join('\n');

export interface CleanupIo {
  env: Record<string, string | undefined>;
  out: (text: string) => void;
  err: (text: string) => void;
  /** Opens the kernel and firewall ports (tests pass fakes). */
  open: () => Promise<{ dataplane: Dataplane; firewall: Firewall }>;
  /** Whether the plugin answers on `socket` (default: probePlugin). */
  probe?: (socket: string) => Promise<PluginState>;
}

export type PluginState = { running: false } | { running: true; how: string };

/**
 * Whether something serves on the plugin socket: a connection that is
 * accepted counts (an answer to Plugin.Activate, or none within 2 s); a
 * missing socket file or a refused connection does not.
 */
export const probePlugin = (socket: string, timeoutMs = 2000): Promise<PluginState> =>
  new Promise((resolve) => {
    const s = connect(socket);
    const done = (state: PluginState): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(state);
    };
    const timer = setTimeout(() => done({ running: true, how: `${socket} accepts connections` }), timeoutMs);
    s.once('connect', () => s.write('POST /Plugin.Activate HTTP/1.1\r\nHost: plugin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'));
    s.once('data', () => done({ running: true, how: `the plugin answers on ${socket}` }));
    s.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') done({ running: false });
      else done({ running: true, how: `${socket} cannot be checked (${e.code ?? e.message})` });
    });
  });

/** Runs the command; resolves with the exit code. */
export const runCleanup = async (argv: string[], io: CleanupIo): Promise<number> => {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.out(`${cleanupHelp()}\n`);
    return 0;
  }
  const yes = argv.includes('--yes') || argv.includes('-y');
  const force = argv.includes('--force');
  let config;
  try {
    config = loadConfig(argv.filter((a) => !['--yes', '-y', '--force'].includes(a)), io.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      io.err(`tsoverlay cleanup: ${e.message}\nRun "tsoverlay cleanup --help" for the options.\n`);
      return 2;
    }
    throw e;
  }
  const state = await (io.probe ?? probePlugin)(config.socket);
  if (state.running && !force) {
    io.err(`tsoverlay cleanup: refused: ${state.how}, so the plugin is running. Stop it first (systemctl stop tsoverlay, or docker plugin disable), or pass --force.\n`);
    return 1;
  }
  const { dataplane, firewall } = await io.open();
  try {
    const plan = await planCleanup(dataplane, firewall, config);
    const notes = [
      ...plan.leftAlone.map((l) => `left alone: ${l}`),
      ...(state.running ? [`warning: ${state.how}; going on because of --force`] : []),
    ];
    if (plan.items.length === 0) {
      io.out(`${[...notes, 'tsoverlay cleanup: nothing of tsoverlay\'s on this node.'].join('\n')}\n`);
      return 0;
    }
    if (!yes) {
      io.out(
        [
          `tsoverlay cleanup would remove (${plan.items.length}):`,
          ...plan.items.map((i) => `  ${i.what}`),
          ...notes,
          'Dry run: nothing was removed. Run again with --yes to remove it.',
        ].join('\n') + '\n',
      );
      return 0;
    }
    const outcome = await applyCleanup(plan);
    io.out(
      [
        ...outcome.removed.map((w) => `removed ${w}`),
        ...outcome.gone.map((w) => `already gone: ${w}`),
        ...outcome.kept.map((w) => `kept ${w}`),
        ...notes,
        `tsoverlay cleanup: removed ${outcome.removed.length}, already gone ${outcome.gone.length}, kept ${outcome.kept.length}, failed ${outcome.failed.length}.`,
      ].join('\n') + '\n',
    );
    for (const f of outcome.failed) io.err(`tsoverlay cleanup: could not remove ${f.what}: ${f.error}\n`);
    return outcome.failed.length > 0 ? 1 : 0;
  } finally {
    await dataplane.close();
  }
};
