/**
 * Running a command (iptables, iptables-restore): the one kind of process
 * tsoverlay starts. Tests inject a runner (e.g. one wrapping `ip netns exec`).
 */
import { execFile } from 'node:child_process';

export interface CommandResult {
  /** Exit code; -1: not found (stderr mentions ENOENT) or killed. */
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command; tests inject one (e.g. wrapping `ip netns exec`). */
export type CommandRunner = (cmd: string, args: string[], input?: string) => Promise<CommandResult>;

export const runCommand: CommandRunner = (cmd, args, input) =>
  new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: 10_000 }, (err, stdout, stderr) => {
      if (!err) return resolve({ code: 0, stdout, stderr });
      const code = typeof err.code === 'number' ? err.code : -1; // -1: not found / killed
      resolve({ code, stdout, stderr: stderr || err.message });
    });
    child.stdin?.on('error', () => undefined); // a command that exits early: its exit code tells
    child.stdin?.end(input ?? '');
  });
