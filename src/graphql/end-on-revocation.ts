import { GraphQLError, type ExecutionResult } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import type { ApiKeyAuthenticator } from '../auth/api-keys.js';
import type { GraphQLContext } from './context.js';

const revokedError = () => new GraphQLError('The API key of this stream was revoked.', { extensions: { code: 'UNAUTHENTICATED' } });

/**
 * `source`, ended with an UNAUTHENTICATED error once `watch` says its key was revoked. Written by
 * hand: a generator's return() would wait for its pending next(), which waits for a change that
 * may never come. Each next() races a promise of its own, dropped once it settles: raced against
 * one promise for the stream's whole life, every event passed on stayed reachable from it.
 */
function endOnRevocation(source: AsyncIterable<ExecutionResult>, watch: (onRevoked: () => void) => () => void): AsyncIterableIterator<ExecutionResult> {
  const inner = source[Symbol.asyncIterator]();
  let revoked = false;
  /** Settles the next() under way, if any, on revocation. */
  let interrupt: (() => void) | undefined;
  const unwatch = watch(() => {
    revoked = true;
    interrupt?.();
  });
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
      if (!revoked) {
        const interrupted = new Promise<'revoked'>((resolve) => (interrupt = () => resolve('revoked')));
        const next = await Promise.race([inner.next(), interrupted]).finally(() => (interrupt = undefined));
        if (next !== 'revoked') {
          if (next.done) end();
          return next;
        }
      }
      end();
      return { done: false, value: { errors: [revokedError()] } };
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
