import { GraphQLError } from 'graphql';
import { describe, expect, it } from 'vitest';
import { withClientErrors } from '../../src/graphql/types/file-status.js';
import type { StatusEvent } from '../../src/status/model.js';
import { HistoryExpiredError } from '../../src/status/watch-status.js';

/** A stream that fails its next read with `error`, as a subscriber's does at a hole in the history. */
function failingStream(error: Error): AsyncGenerator<StatusEvent> {
  return (async function* () {
    throw error;
  })();
}

describe('withClientErrors', () => {
  it('tells a history that expired under the stream as HISTORY_EXPIRED, with what was lost', async () => {
    const read = withClientErrors(failingStream(new HistoryExpiredError('f1', 66, 101))).next();
    await expect(read).rejects.toBeInstanceOf(GraphQLError);
    await expect(read).rejects.toMatchObject({
      message: expect.stringContaining('The changes 66 to 101 of file f1 were deleted'),
      extensions: { code: 'HISTORY_EXPIRED' },
    });
  });

  it('leaves any other failure as it is, for Yoga to mask', async () => {
    const failure = new Error('connection lost');
    await expect(withClientErrors(failingStream(failure)).next()).rejects.toBe(failure);
  });
});
