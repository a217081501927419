/**
 * The ops commands' own flags (`--json`, `--daemon-json PATH`), taken out
 * of the argument list before the rest goes to config.ts, which parses the
 * plugin's settings exactly as `serve` does.
 */
export interface OpsArgs {
  json: boolean;
  /** doctor: the Docker daemon configuration to check. */
  daemonJson: string;
  /** What is left for loadConfig. */
  rest: string[];
}

export const DEFAULT_DAEMON_JSON = '/etc/docker/daemon.json';

export const splitOpsArgs = (argv: readonly string[]): OpsArgs => {
  const rest: string[] = [];
  let json = false;
  let daemonJson = DEFAULT_DAEMON_JSON;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--json') json = true;
    else if (a.startsWith('--daemon-json=')) daemonJson = a.slice('--daemon-json='.length);
    else if (a === '--daemon-json' && i + 1 < argv.length) daemonJson = argv[++i] ?? daemonJson;
    else rest.push(a);
  }
  return { json, daemonJson, rest };
};
