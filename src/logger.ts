// One JSON line per event on stdout (pretty and coloured in a terminal), via pino.
import pino, { type Logger } from 'pino';

export type { Logger };

export interface LoggerOptions {
  level?: string;
  /** Human-readable, for a terminal. */
  pretty?: boolean;
  /** Where JSON lines go (tests capture them); stdout, buffered, by default. */
  destination?: pino.DestinationStream;
}

export function createLogger({ level = 'info', pretty = false, destination }: LoggerOptions = {}): Logger {
  if (pretty) {
    // pino-pretty formats in a worker thread, off the request path.
    return pino({
      level,
      transport: {
        target: 'pino-pretty',
        options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' },
      },
    });
  }
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? bufferedStdout(),
  );
}

/** Logs nothing: for tests and tools that do not want the output. */
export const silentLogger = (): Logger => pino({ level: 'silent' });

let stdout: pino.DestinationStream | undefined;

/**
 * stdout in 4 KiB writes: a write per line would cost a system call per request. A line waits at
 * most a second for the buffer to fill, and everything is flushed before the process exits.
 */
function bufferedStdout(): pino.DestinationStream {
  // One for the process, whatever the number of loggers (the tests make one per app).
  if (stdout) return stdout;
  const stream = pino.destination({ sync: false, minLength: 4096 });
  setInterval(() => stream.flush(), 1000).unref();
  process.once('exit', () => stream.flushSync());
  return (stdout = stream);
}
