/**
 * The scaffolding every integration test file shares: run only as root with
 * TSOVERLAY_IT=1, one lab per file, destroyed at the end — with the hosts'
 * logs printed and kept (TSL_LOG_DIR) when something failed, or always with
 * TSL_KEEP_LOGS=1.
 */
import type { Test } from 'tap';
import { Lab, type LabOptions } from './lab.js';

export const integrationEnabled = (): boolean => process.env['TSOVERLAY_IT'] === '1' && process.getuid?.() === 0;

export const SKIP_REASON = 'integration tests need root and TSOVERLAY_IT=1';

export interface LabForFileOptions {
  /** Lines of each host's logs to print when a test failed (0: none). */
  logLines?: number;
  /** Put back whatever a failed test left cut off or stopped, before the teardown. */
  beforeDestroy?: (lab: Lab) => Promise<void>;
}

/** This file's lab, or undefined (after t.fail) if it could not be built. */
export const labForFile = async (t: Test, options: LabOptions, opts: LabForFileOptions = {}): Promise<Lab | undefined> => {
  let lab: Lab;
  try {
    lab = await Lab.create(options);
  } catch (e) {
    t.fail(`lab could not be built: ${e instanceof Error ? e.message : String(e)}`);
    return undefined;
  }
  t.teardown(async () => {
    await opts.beforeDestroy?.(lab);
    if (!t.passing() && opts.logLines) {
      for (const h of lab.hosts) process.stderr.write(`\n===== logs of ${h} =====\n${await h.logs(opts.logLines)}\n`);
    }
    const keep = !t.passing() || process.env['TSL_KEEP_LOGS'] === '1';
    await lab.destroy(keep ? { keepLogsIn: process.env['TSL_LOG_DIR'] ?? 'test-results/lab-logs' } : {});
  });
  return lab;
};
