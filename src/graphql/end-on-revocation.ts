import { GraphQLError, type ExecutionResult } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import type { ApiKeyAuthenticator } from '../auth/api-keys.js';
import type { GraphQLContext } from './context.js';

const revokedError = () => new GraphQLError('The API key of this stream was revoked.', { extensions: { code: 'UNAUTHENTICATED' } });

/**
 * `source`, ended with an UNAUTHENTICATED error once `watch` says its key was revoked. Written by
 * hand: a generator's return() would wait for its pending next(), which waits for a change that
 * may never come.
 */
function endOnRevocation(source: AsyncIterable<ExecutionResult>, watch: (onRevoked: () => void) => () => void): AsyncIterableIterator<ExecutionResult> {
  const inner = source[Symbol.asyncIterator]();
  let revoke: () => void = () => {};
  const revoked = new Promise<'revoked'>((resolve) => (revoke = () => resolve('revoked')));
  const unwatch = watch(revoke);
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    unwatch();
    void inner.return?.();
  };
  return {
    async next() {
      if (ended) return { done: true, value: undefined };
      const next = await Promise.race([inner.next(), revoked]);
      if (next === 'revoked') {
        end();
        return { done: false, value: { errors: [revokedError()] } };
      }
      if (next.done) end();
      return next;
    },
    async return() {
      end();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/**
 * A subscription (SSE or WebSocket) outlives the check of its key when it opened: it is watched,
 * and ends with an error once the key is revoked (within the authenticator's trust time).
 */
export function useStreamsEndOnRevocation(authenticator: ApiKeyAuthenticator): Plugin<GraphQLContext> {
  return {
    onSubscribe() {
      return {
        onSubscribeResult({ args, result, setResult }) {
          if (!isAsyncIterable(result)) return;
          const { authorization } = args.contextValue as GraphQLContext;
          setResult(endOnRevocation(result, (onRevoked) => authenticator.watch(authorization, onRevoked)));
        },
      };
    },
  };
}
