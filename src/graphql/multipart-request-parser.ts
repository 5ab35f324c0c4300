import type { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { processRequest } from 'graphql-upload-minimal';
import type { Plugin } from 'graphql-yoga';
import { tooManyFilesRefusal } from '../uploads/errors.js';
import { clientError, unauthenticated } from './errors.js';

interface NodeServerContext {
  req: IncomingMessage;
  res: ServerResponse;
}

export function isMultipart(contentType: string | null | undefined): boolean {
  return /^multipart\/form-data\b/i.test(contentType ?? '');
}

/**
 * graphql-upload-minimal (1.6.4, the latest) hears only the first error of its multipart parser,
 * then destroys it; busboy may then emit a second one ("Unexpected end of form"), and an error
 * nobody listens for ends the process. A part header over 16 KB or a NUL in a filename did that.
 * The first error still reaches the library, which answers the request; the rest are heard here.
 */
function hearEveryParserError(req: IncomingMessage): void {
  const pipe = req.pipe;
  req.pipe = function pipeHeard<T extends NodeJS.WritableStream>(destination: T, options?: { end?: boolean }): T {
    (destination as unknown as EventEmitter).on('error', () => {});
    return pipe.call(this, destination, options) as T;
  };
}

/**
 * Parses GraphQL multipart requests from the Node request stream, so that a file flows straight
 * to disk: Yoga's own parser would read the whole body into memory. The WHATWG request body is
 * never touched, or a second copy of the upload would be read.
 */
export function useStreamingMultipart(options: {
  maxFileSize: number;
  isAuthenticated(authorization: string | null): Promise<boolean>;
}): Plugin<NodeServerContext> {
  return {
    onRequestParse({ request, serverContext, setRequestParser }) {
      if (!isMultipart(request.headers.get('content-type'))) return;
      const { req, res } = serverContext as unknown as NodeServerContext;
      setRequestParser(async () => {
        // A response sent before the body was read (an error, a resolver that threw early) would
        // leave the client stalled until keep-alive timed out: read what it still sends.
        // Unpiped first: the multipart parser, paused on a file nobody reads, would hold it back.
        res.once('finish', () => {
          if (req.complete) return;
          req.unpipe();
          req.resume();
        });
        // Check the key before reading a byte: a stranger's upload must cost nothing.
        if (!(await options.isAuthenticated(request.headers.get('authorization')))) throw unauthenticated();
        let operations: unknown;
        hearEveryParserError(req);
        // Media types are case-insensitive, but the library looks for "multipart/form-data;" as written.
        req.headers['content-type'] = req.headers['content-type']!.replace(/^multipart\/form-data/i, 'multipart/form-data');
        try {
          operations = await processRequest(req, res, { maxFileSize: options.maxFileSize, maxFiles: 1, maxFieldSize: 1_000_000 });
        } catch (error) {
          const tooMany = tooManyFilesRefusal(error);
          if (tooMany) throw clientError('TOO_MANY_FILES', tooMany.message, 413);
          const { message, status } = error as { message: string; status?: number };
          throw clientError('BAD_REQUEST', `Malformed multipart request: ${message}`, status && status < 500 ? status : 400);
        }
        if (Array.isArray(operations)) throw clientError('BAD_REQUEST', 'Batched operations are not supported.', 400);
        return operations as Record<string, unknown>;
      });
    },
  };
}
