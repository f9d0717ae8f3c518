// A logger whose JSON lines the test can read: the access log and any unexpected error.
import { createLogger, type Logger } from '../../src/logger.js';

export type LogLine = Record<string, unknown> & { level: string; msg: string };

export interface CapturedLogs {
  logger: Logger;
  lines: LogLine[];
  /** Lines at level error or above: unexpected errors, which tests assert never happen. */
  errors: LogLine[];
}

export function captureLogs(): CapturedLogs {
  const lines: LogLine[] = [];
  const errors: LogLine[] = [];
  const logger = createLogger({
    level: 'debug',
    destination: {
      write(text: string) {
        const line = JSON.parse(text) as LogLine;
        lines.push(line);
        if (line.level === 'error' || line.level === 'fatal') errors.push(line);
      },
    },
  });
  return { logger, lines, errors };
}
