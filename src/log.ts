import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * An error as pino logs it, less the database client that pg's pool attaches to the errors of its
 * idle connections: a dump of the whole connection, with its PostgreSQL cancel key.
 */
function serializeError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const { client: _client, ...rest } = pino.stdSerializers.err(error) as ReturnType<typeof pino.stdSerializers.err> & { client?: unknown };
  return rest;
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino({ level, base: { service: 'filestatus' }, serializers: { err: serializeError } }, destination);
}

/** A serialized error without any stack, its causes' and aggregated errors' included. */
function withoutStacks(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutStacks);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => key !== 'stack')
      .map(([key, field]) => [key, withoutStacks(field)]),
  );
}

/**
 * The same logger, with errors logged as their type, message and own fields but no stack: the
 * webhook engine's logs promise never to hold a stack trace, which names the server's files.
 */
export function withoutStackTraces(log: Logger): Logger {
  return log.child({}, { serializers: { err: (error: unknown) => withoutStacks(serializeError(error)) } });
}
