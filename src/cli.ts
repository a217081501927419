#!/usr/bin/env -S node --max-semi-space-size=1 --max-old-space-size=96
/**
 * tsoverlay command line: `tsoverlay serve [options]`, `tsoverlay --help`.
 */
import { ConfigError, helpText, loadConfig } from './config.js';
import { createLogger } from './log.js';
import { serve } from './serve.js';

const main = async (argv: string[]): Promise<number> => {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help' || rest.includes('--help')) {
    process.stdout.write(`${helpText()}\n`);
    return command === undefined ? 2 : 0;
  }
  if (command !== 'serve') {
    process.stderr.write(`tsoverlay: unknown command "${command}"\n\n${helpText()}\n`);
    return 2;
  }
  let config;
  try {
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
