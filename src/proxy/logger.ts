import { pino, type Logger } from 'pino';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * JSON logs (pino) on **stderr**, so stdout stays clean. One object per line with `level`, `time`,
 * `msg` and context fields. Session ids are never logged, only `session` fingerprints.
 */
export function createLogger(level: LogLevel = 'info'): Logger {
  return pino({ level, base: { name: 'mcp-migrate' } }, pino.destination({ dest: 2, sync: true }));
}
