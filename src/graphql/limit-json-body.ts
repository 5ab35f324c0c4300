import { createGraphQLError, type Plugin } from 'graphql-yoga';
import { isMultipart } from './multipart-request-parser.js';

/**
 * The rest of the body is never read, so the connection is closed with the answer: left open, a
 * keep-alive client sent its next request after bytes the server would still take for this body,
 * and waited seconds for a reset.
 */
const tooLarge = () =>
  createGraphQLError('Request body too large', {
    extensions: { code: 'REQUEST_ENTITY_TOO_LARGE', http: { status: 413, headers: { connection: 'close' } } },
  });

/**
 * Yoga's own body limit would also apply to uploads (and read a second copy of them), so it is
 * off, and this one bounds every request but a multipart upload, which has its own limit.
 */
export function useJsonBodyLimit(limit: number): Plugin {
  return {
    onRequestParse({ request, requestParser, setRequestParser, fetchAPI }) {
      if (!request.body || isMultipart(request.headers.get('content-type'))) return;
      const declared = request.headers.get('content-length');
      if (declared !== null && !/^\d+$/.test(declared)) {
        throw createGraphQLError('Content-Length header is invalid.', { extensions: { code: 'BAD_REQUEST', http: { status: 400 } } });
      }
      if (declared !== null && Number(declared) > limit) throw tooLarge();
      if (!requestParser || declared !== null) return;
      setRequestParser(async (req) => {
        const reader = req.body!.getReader();
        const chunks: Uint8Array[] = [];
        let total = 0;
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          total += value.byteLength;
          if (total > limit) {
            await reader.cancel();
            throw tooLarge();
          }
          chunks.push(value);
        }
        return requestParser(new fetchAPI.Request(req.url, { method: req.method, headers: req.headers, body: Buffer.concat(chunks) }));
      });
    },
  };
}
