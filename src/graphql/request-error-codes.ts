import { GraphQLError, type ExecutionResult } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';

/** The code of an error that stopped an operation before any field ran: its variables, or which operation to run. */
function requestErrorCode(error: GraphQLError): string {
  return error.message.startsWith('Variable "') ? 'BAD_USER_INPUT' : 'OPERATION_RESOLUTION_FAILURE';
}

/** `result` with a code on each error that stopped the operation before it started; null when none lacked one. */
function withCodes(result: ExecutionResult): ExecutionResult | null {
  // Field errors have a path, and data beside them; these have neither.
  const uncoded = (error: GraphQLError) => error.path === undefined && typeof error.extensions?.code !== 'string';
  if (result.data !== undefined || !result.errors?.some(uncoded)) return null;
  return {
    ...result,
    errors: result.errors.map((error) =>
      uncoded(error)
        ? new GraphQLError(error.message, { nodes: error.nodes, source: error.source, positions: error.positions, extensions: { ...error.extensions, code: requestErrorCode(error) } })
        : error,
    ),
  };
}

/**
 * graphql-js refuses a variable that does not fit its type, a required one left out, or a document
 * whose operation to run is unclear, without a code; Yoga adds one to the last over HTTP only.
 * Every error of the API carries a code, whatever the transport.
 */
export function useRequestErrorCodes(): Plugin {
  const setCodes = ({ result, setResult }: { result: unknown; setResult: (result: ExecutionResult) => void }) => {
    if (isAsyncIterable(result)) return;
    const coded = withCodes(result as ExecutionResult);
    if (coded) setResult(coded);
  };
  return {
    onExecute: () => ({ onExecuteDone: setCodes }),
    onSubscribe: () => ({ onSubscribeResult: setCodes }),
  };
}
