import { type Plugin } from 'graphql-yoga';
import { clientError } from './errors.js';

/**
 * A GET request carries `variables` and `extensions` as JSON in its query string. Yoga's parser
 * throws a plain SyntaxError on bad JSON there, which it answers as a 500 and logs as an empty
 * object; a POST with the same mistake gets a 400.
 */
export function useQueryStringParamsCheck(): Plugin {
  return {
    onRequestParse({ request, url }) {
      if (request.method !== 'GET') return;
      for (const name of ['variables', 'extensions']) {
        const raw = url.searchParams.get(name);
        if (raw === null) continue;
        let value: unknown;
        try {
          value = JSON.parse(raw);
        } catch {
          throw clientError('BAD_REQUEST', `The ${name} parameter is not JSON.`, 400);
        }
        if (value !== null && (typeof value !== 'object' || Array.isArray(value))) {
          throw clientError('BAD_REQUEST', `The ${name} parameter must be a JSON object.`, 400);
        }
      }
    },
  };
}
