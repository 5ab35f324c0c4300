import { canonicalUuid } from '../../uuid.js';
import { STAGES, type StatusEvent } from '../../status/model.js';
import { HistoryExpiredError, NotFoundError, watchFileStatus, watchTenantStatus } from '../../status/watch-status.js';
import { builder } from '../builder.js';
import { clientError, notFound } from '../errors.js';

export const ProcessingStatus = builder.enumType('ProcessingStatus', {
  values: ['PROCESSING', 'COMPLETED', 'FAILED'] as const,
});

export const ProcessingStage = builder.enumType('ProcessingStage', { values: STAGES });

export const FileStatus = builder.objectRef<StatusEvent>('FileStatus').implement({
  description: 'Where a file is in its processing. `sequence` grows by one with every change.',
  fields: (t) => ({
    fileId: t.exposeID('fileId'),
    status: t.field({ type: ProcessingStatus, resolve: (s) => s.status }),
    stage: t.field({ type: ProcessingStage, resolve: (s) => s.stage }),
    progress: t.exposeInt('progress', { description: '0 to 100; never goes back within one attempt.' }),
    message: t.exposeString('message', { nullable: true, description: 'Why the file failed, in words fit for its owner.' }),
    metadata: t.field({ type: 'JSON', resolve: (s) => s.metadata }),
    sequence: t.exposeInt('sequence'),
    attempt: t.exposeInt('attempt', { description: 'Starts at 1; each retryFile adds one.' }),
    etaSeconds: t.exposeFloat('etaSeconds', { nullable: true }),
    updatedAt: t.field({ type: 'DateTime', resolve: (s) => s.updatedAt }),
  }),
});

builder.queryField('fileStatus', (t) =>
  t.field({
    type: FileStatus,
    nullable: true,
    description: "The current status of one of the caller's files; null when there is no such file.",
    args: { fileId: t.arg.id({ required: true }) },
    resolve: (_root, { fileId }, { tenant, services }) => {
      const id = canonicalUuid(String(fileId));
      return id ? services.statusCache.read(tenant.id, id) : null;
    },
  }),
);

/**
 * The stream, with a history that expired under it told as HISTORY_EXPIRED rather than masked.
 * Hand-written, as the stream is: a generator's return() would wait for a pending next().
 */
export function withClientErrors(events: AsyncGenerator<StatusEvent>): AsyncGenerator<StatusEvent> {
  const told = (error: unknown): never => {
    if (error instanceof HistoryExpiredError) throw clientError('HISTORY_EXPIRED', error.message);
    throw error;
  };
  return {
    next: () => events.next().catch(told),
    return: (value) => events.return(value),
    throw: (error) => events.throw(error).catch(told),
    [Symbol.asyncIterator]() {
      return this;
    },
  } as AsyncGenerator<StatusEvent>;
}

builder.subscriptionField('fileStatusChanged', (t) =>
  t.field({
    type: FileStatus,
    description:
      'With fileId: the current status, then every change in order; completes after COMPLETED or FAILED. ' +
      "Without: every change of every file of the caller's tenant, never completing.",
    args: { fileId: t.arg.id() },
    subscribe: async (_root, { fileId }, { tenant, services }) => {
      if (fileId === null || fileId === undefined) return withClientErrors(await watchTenantStatus(services, tenant.id));
      const id = canonicalUuid(String(fileId));
      if (!id) throw notFound('file');
      try {
        return withClientErrors(await watchFileStatus(services, tenant.id, id));
      } catch (error) {
        if (error instanceof NotFoundError) throw notFound('file');
        throw error;
      }
    },
    resolve: (event) => event,
  }),
);
