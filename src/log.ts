import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'filestatus' } });
}

/**
 * The same logger, with errors logged as their type, message and own fields but no stack: the
 * webhook engine's logs promise never to hold a stack trace, which names the server's files.
 */
export function withoutStackTraces(log: Logger): Logger {
  return log.child(
    {},
    {
      serializers: {
        err: (error: unknown) => {
          if (!(error instanceof Error)) return error;
          const { stack: _stack, ...rest } = pino.stdSerializers.err(error);
          return rest;
        },
      },
    },
  );
}
