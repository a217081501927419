/**
 * The process logger: pino JSON to stdout. Field names used across the code:
 * component, network, endpoint, vni, ifname, ip, mac, node, actions, err.
 */
import { pino, type Logger } from 'pino';
import type { LogLevel } from './config.js';

export const createLogger = (level: LogLevel): Logger => pino({ level, base: { pid: process.pid } });
