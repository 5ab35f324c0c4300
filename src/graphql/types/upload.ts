import { acceptUpload, retryFile } from '../../uploads/accept-upload.js';
import {
  FileTooLargeError,
  IncompleteUploadError,
  InvalidWebhookEventsError,
  InvalidWebhookUrlError,
  MissingFileError,
  TooManyFilesError,
} from '../../uploads/errors.js';
import { WEBHOOK_EVENT_TYPES, parseWebhookTarget, type WebhookEventType } from '../../uploads/webhook-target.js';
import { canonicalUuid } from '../../uuid.js';
import { builder } from '../builder.js';
import { clientError, notFound } from '../errors.js';
import { File, type FileShape } from './file.js';
import { FileStatus } from './file-status.js';

export const WebhookEventTypeEnum = builder.enumType('WebhookEventType', {
  description: 'The webhook types an upload can subscribe to.',
  values: Object.fromEntries(
    WEBHOOK_EVENT_TYPES.map((type) => [type.replace('.', '_').toUpperCase(), { value: type, description: `\`${type}\`` }]),
  ) as Record<'FILE_PROCESSING' | 'FILE_COMPLETED' | 'FILE_FAILED', { value: WebhookEventType; description: string }>,
});

const UploadFilePayload = builder.objectRef<{ file: FileShape }>('UploadFilePayload').implement({
  fields: (t) => ({
    file: t.field({ type: File, resolve: (payload) => payload.file }),
    status: t.field({ type: FileStatus, resolve: (payload) => payload.file.status! }),
  }),
});

builder.mutationField('uploadFile', (t) =>
  t.field({
    type: UploadFilePayload,
    description:
      'Uploads one file (GraphQL multipart request). Answers once the bytes are stored; processing runs in the background.',
    args: {
      file: t.arg({ type: 'Upload', required: true }),
      webhookUrl: t.arg.string(),
      webhookEvents: t.arg({ type: [WebhookEventTypeEnum] }),
    },
    resolve: async (_root, args, { tenant, services }) => {
      try {
        const webhook = await parseWebhookTarget(args.webhookUrl, args.webhookEvents, services.checkWebhookUrl);
        return { file: await acceptUpload(services, tenant.id, args.file, webhook) };
      } catch (error) {
        if (error instanceof InvalidWebhookUrlError) throw clientError('INVALID_WEBHOOK_URL', error.message);
        if (error instanceof InvalidWebhookEventsError) throw clientError('BAD_USER_INPUT', error.message);
        if (error instanceof FileTooLargeError) throw clientError('FILE_TOO_LARGE', error.message, 413);
        if (error instanceof TooManyFilesError) throw clientError('TOO_MANY_FILES', error.message, 413);
        if (error instanceof MissingFileError) throw clientError('BAD_USER_INPUT', `No file arrived: ${error.message}`);
        if (error instanceof IncompleteUploadError) throw clientError('BAD_REQUEST', `The request ended before its file did: ${error.message}`, 400);
        throw error;
      }
    },
  }),
);

builder.mutationField('retryFile', (t) =>
  t.field({
    type: FileStatus,
    description: 'Queues a FAILED file again; its status comes back PROCESSING with attempt + 1.',
    args: { fileId: t.arg.id({ required: true }) },
    resolve: async (_root, { fileId }, { tenant, services }) => {
      // In the database's spelling: the job and its worker name the file by this id.
      const id = canonicalUuid(String(fileId));
      if (!id) throw notFound('file');
      const event = await retryFile(services, tenant.id, id);
      if (event) return event;
      const file = await services.prisma.file.findUnique({ where: { id }, select: { tenantId: true } });
      if (!file || file.tenantId !== tenant.id) throw notFound('file');
      throw clientError('NOT_FAILED', 'Only a FAILED file can be retried.');
    },
  }),
);
