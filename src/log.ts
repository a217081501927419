/**
 * The process logger: pino JSON to stdout, and the one logger type every
 * module takes (`Log`, the subset of pino's `Logger` the code calls), so a test
 * can pass a recorder and a module never imports pino.
 *
 * Field names used across the code (one name per thing):
 * component, network, endpoint, vni, ifname, ip, mac, node, actions, err.
 */
import { pino, type Logger } from 'pino';
import type { LogLevel } from './config.js';

export const createLogger = (level: LogLevel): Logger => pino({ level, base: { pid: process.pid } });

/** What a module needs of a logger: pino's four levels with a field object first. */
export interface Log {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** A logger that drops everything (the default where a caller passes none). */
export const silentLog: Log = { debug() {}, info() {}, warn() {}, error() {} };
