import fs from 'node:fs';
import { expect, it } from 'vitest';
import { printSortedSchema } from '../../src/graphql/schema.js';

it('schema.graphql matches the Pothos schema (run `npm run schema:print` after changing it)', () => {
  expect(fs.readFileSync(new URL('../../schema.graphql', import.meta.url), 'utf8')).toBe(printSortedSchema());
});
