import { GraphQLError } from 'graphql';

/** Errors clients see, each with a stable `extensions.code` (Yoga masks any other error). */
export function clientError(code: string, message: string, httpStatus?: number): GraphQLError {
  return new GraphQLError(message, { extensions: { code, ...(httpStatus ? { http: { status: httpStatus } } : {}) } });
}

export const notFound = (what: string) => clientError('NOT_FOUND', `No ${what} with this id.`);
export const unauthenticated = () =>
  clientError('UNAUTHENTICATED', 'Send a valid API key as "Authorization: Bearer <key>".', 401);
