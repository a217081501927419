/**
 * The process logger: pino JSON to stdout, and the one logger type every
 * module takes (`Log`, the subset of pino's `Logger` the code calls), so a test
 * can pass a recorder and a module never imports pino.
 *
 * Field names used across the code (one name per thing):
 * component, network, endpoint, vni, ifname, ip, mac, node, actions, err.
 * `node` is always the node that writes the line; a line about another node
 * names it under another key (e.g. `gone`, `nodes`).
 *
 * Every line names its node: serve.ts binds `node` once, on the logger every
 * component's child comes from. Each key appears once per line: a child
 * binds only what its parent does not already say (`childWith`), a call does
 * not repeat a bound field, and as the last word `oneKeyEach` (pino's
 * streamWrite hook) keeps one of a repeated key — pino itself writes the
 * parent's bindings, the child's and the call's fields one after the other.
 */
import { type DestinationStream, type Logger, pino } from 'pino';
import type { LogLevel } from './config.js';

/**
 * One JSON line with each key once. A key written twice keeps its last value
 * (what a JSON reader would take) in its first place. A line that is not a
 * JSON object passes unchanged.
 */
export const oneKeyEach = (line: string): string => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return line;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return line;
  return `${JSON.stringify(parsed)}\n`;
};

/** The process logger (stdout unless a destination is given, e.g. in tests). */
export const createLogger = (level: LogLevel, destination?: DestinationStream): Logger =>
  pino({ level, base: { pid: process.pid }, hooks: { streamWrite: oneKeyEach } }, destination);

/**
 * A child that adds only the bindings `log` does not already have with the
 * same value (pino would write a repeated binding twice); `log` itself if
 * there is nothing to add.
 */
export const childWith = (log: Logger, bindings: Record<string, unknown>): Logger => {
  const bound = log.bindings();
  const added = Object.entries(bindings).filter(([k, v]) => bound[k] !== v);
  return added.length === 0 ? log : log.child(Object.fromEntries(added));
};

/** What a module needs of a logger: pino's four levels with a field object first. */
export interface Log {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** A logger that drops everything (the default where a caller passes none). */
export const silentLog: Log = { debug() {}, info() {}, warn() {}, error() {} };
