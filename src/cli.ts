#!/usr/bin/env -S node --max-semi-space-size=1 --max-old-space-size=96
/**
 * tsoverlay command line: `tsoverlay serve [options]`, `tsoverlay status
 * [--json] [options]`, `tsoverlay doctor [--json] [options]`, `tsoverlay store
 * secure [options]`, `tsoverlay cleanup [--yes] [--force] [options]`,
 * `tsoverlay --help`, `tsoverlay --version` (`-v`, `version`). Dispatch
 * only: the commands live in serve.ts, src/ops/ and store-command.ts.
 */
import { type Config, ConfigError, helpText, loadConfig } from './config.js';
import { createLogger } from './log.js';
import { serve } from './serve.js';
import { packageVersion } from './version.js';

const COMMANDS = `Commands:
  serve               run the plugin (the options below)
  status [--json]     the cluster from the store, and where this node's kernel differs from it
                      (exit 0 converged, 1 differences, 3 unreadable)
  doctor [--json] [--daemon-json PATH]
                      status plus this node's environment, each check with its fix (exit 1 on a failure)
  store secure        give every znode of an existing ZooKeeper tree the ACL of --zk-auth-file,
                      once, while the nodes run (docs/security.md)
  cleanup [--yes] [--force]
                      remove what tsoverlay put on this node (devices, rules, state files);
                      without --yes only lists it; refused while the plugin runs (cleanup --help)
  --version, -v, version
                      print the version
status and doctor read the store and kernel with the same options as serve, and change nothing.
`;

const OPS = new Set(['status', 'doctor']);

/** status and doctor: their own flags out, the rest parsed as serve's. */
const runOps = async (command: string, argv: string[]): Promise<number> => {
  const { splitOpsArgs } = await import('./ops/ops-args.js');
  const args = splitOpsArgs(argv);
  const config: Config = loadConfig(args.rest, process.env);
  const out = { stdout: process.stdout, stderr: process.stderr, env: process.env };
  if (command === 'status') return (await import('./ops/status-command.js')).runStatus(config, args, out);
  return (await import('./ops/doctor-command.js')).runDoctor(config, args, out);
};

/** cleanup: its own flags and help (src/ops/cleanup-command.ts). */
const runCleanup = async (argv: string[]): Promise<number> => {
  const { runCleanup: run } = await import('./ops/cleanup-command.js');
  return run(argv, {
    env: process.env,
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    open: async () => {
      const { NetlinkDataplane } = await import('./dataplane/netlink-dataplane.js');
      const { IptablesFirewall } = await import('./dataplane/iptables-firewall.js');
      return { dataplane: new NetlinkDataplane(), firewall: new IptablesFirewall() };
    },
  });
};

const main = async (argv: string[]): Promise<number> => {
  const [command, ...rest] = argv;
  if (command === '--version' || command === '-v' || command === 'version') {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  if (command === 'cleanup') return runCleanup(rest);
  if (command === undefined || command === '--help' || command === '-h' || command === 'help' || rest.includes('--help')) {
    process.stdout.write(`${COMMANDS}\n${helpText()}\n`);
    return command === undefined ? 2 : 0;
  }
  if (command === 'store') {
    const { runStoreCommand } = await import('./store-command.js');
    return runStoreCommand(rest, process.env);
  }
  if (command !== 'serve' && !OPS.has(command)) {
    process.stderr.write(`tsoverlay: unknown command "${command}"\n\n${COMMANDS}\n${helpText()}\n`);
    return 2;
  }
  let config;
  try {
    if (OPS.has(command)) return await runOps(command, rest);
    config = loadConfig(rest, process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`tsoverlay: ${e.message}\nRun "tsoverlay --help" for the options.\n`);
      return 2;
    }
    throw e;
  }
  const log = createLogger(config.logLevel);
  try {
    return await serve(config, log);
  } catch (e) {
    log.fatal({ err: e }, e instanceof Error ? e.message : 'startup failed');
    return 1;
  }
};

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`tsoverlay: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
