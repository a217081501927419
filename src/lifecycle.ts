/**
 * Process lifecycle: the stop signals, the plugin socket, and the ordered,
 * bounded stop. Nothing here knows what is being started or stopped.
 */
import { chmod, mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';

/** A stop that takes longer than this exits the process with 1. */
const STOP_DEADLINE_MS = 10_000;

export interface StopSignals {
  /** Resolves with the first SIGTERM or SIGINT. */
  readonly signalled: Promise<NodeJS.Signals>;
  /** That signal, once it came. */
  stopping(): NodeJS.Signals | undefined;
}

export const listenForStop = (): StopSignals => {
  let stopping: NodeJS.Signals | undefined;
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    const on = (s: NodeJS.Signals) => {
      stopping = s;
      resolve(s);
    };
    process.once('SIGTERM', () => on('SIGTERM'));
    process.once('SIGINT', () => on('SIGINT'));
  });
  return { signalled, stopping: () => stopping };
};

/** The plugin socket's mode: only root (dockerd) may connect. */
export const SOCKET_MODE = 0o600;

/**
 * Serve on the Unix socket at `path`, replacing a stale socket file. The
 * socket is mode 0600 whatever the process umask: it is bound under umask
 * 077 (so it is never reachable by others, not even for a moment) and then
 * set to 0600. The umask is the process's, so it is held only around the
 * bind, after the server is otherwise ready; anything the process creates
 * meanwhile can only come out more private, never less.
 */
export const openSocket = async (server: FastifyInstance, path: string): Promise<void> => {
  await mkdir(dirname(path), { recursive: true });
  await removeSocket(path); // a stale socket makes dockerd hang 15 s
  await server.ready();
  const previous = process.umask(0o077);
  try {
    await server.listen({ path });
  } finally {
    process.umask(previous);
  }
  await chmod(path, SOCKET_MODE);
};

export const removeSocket = (path: string): Promise<void> => unlink(path).catch(() => undefined);

export type StopStep = readonly [what: string, run: () => Promise<unknown>];

/**
 * Run every step in order, each whether or not the ones before failed, and
 * log each failure. Resolves with the exit code: 1 if any step failed. A stop
 * that takes longer than STOP_DEADLINE_MS exits the process with 1.
 */
export const stopInOrder = async (log: Logger, steps: readonly StopStep[]): Promise<number> => {
  const deadline = setTimeout(() => {
    log.error('stop took longer than 10 s; exiting');
    process.exit(1);
  }, STOP_DEADLINE_MS);
  deadline.unref();
  let code = 0;
  for (const [what, run] of steps) {
    try {
      await run();
    } catch (e) {
      code = 1;
      log.error({ err: e }, `${what} failed during stop`);
    }
  }
  return code;
};
