import type { AcceptedFile } from '../../uploads/accept-upload.js';
import { canonicalUuid } from '../../uuid.js';
import type { StatusEvent } from '../../status/model.js';
import { toStatusEvent } from '../../status/status-rows.js';
import type { Prisma } from '../../generated/prisma/client.js';
import { builder } from '../builder.js';
import { DEFAULT_PAGE, decodeCursor, MAX_PAGE, pageSize, toConnection } from '../keyset-cursor.js';
import { FileStatus, ProcessingStatus } from './file-status.js';
import { connectionOf } from './connection.js';

/** A file as its sources give it: a row read here, or the file an upload just accepted, with its status. */
export type FileShape = Omit<AcceptedFile, 'status'> & { status?: StatusEvent | null };

export const File = builder.objectRef<FileShape>('File').implement({
  fields: (t) => ({
    id: t.exposeID('id'),
    filename: t.exposeString('filename'),
    mimeType: t.exposeString('mimeType', { description: 'The type the client claimed; the sniffed one is in status.metadata.' }),
    size: t.float({ description: 'Bytes.', resolve: (file) => Number(file.size) }),
    sha256: t.exposeString('sha256'),
    createdAt: t.field({ type: 'DateTime', resolve: (file) => file.createdAt }),
    status: t.field({
      type: FileStatus,
      resolve: async (file, _args, { services }) => file.status ?? (await services.statusCache.read(file.tenantId, file.id))!,
    }),
  }),
});

const FileConnection = connectionOf('File', File);

builder.queryField('file', (t) =>
  t.field({
    type: File,
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, { id }, { tenant, services }) => {
      const fileId = canonicalUuid(String(id));
      if (!fileId) return null;
      const file = await services.prisma.file.findUnique({ where: { id: fileId }, include: { status: true } });
      if (!file || file.tenantId !== tenant.id) return null;
      return { ...file, status: file.status && toStatusEvent(file.status) };
    },
  }),
);

builder.queryField('files', (t) =>
  t.field({
    type: FileConnection,
    description: "The caller's files, newest first.",
    args: {
      first: t.arg.int({ defaultValue: DEFAULT_PAGE, description: `At most ${MAX_PAGE}.` }),
      after: t.arg.string(),
      status: t.arg({ type: ProcessingStatus }),
    },
    resolve: async (_root, args, { tenant, services }) => {
      const first = pageSize(args.first);
      const where: Prisma.FileWhereInput = { tenantId: tenant.id };
      if (args.status) where.status = { status: args.status };
      if (args.after) {
        const { at, id } = decodeCursor(args.after);
        // The bound on createdAt alone lets the index start at the cursor; the OR, which it cannot
        // use as a range, then only orders the files of that one millisecond.
        where.createdAt = { lte: at };
        where.OR = [{ createdAt: { lt: at } }, { id: { lt: id } }];
      }
      const rows = await services.prisma.file.findMany({
        where,
        include: { status: true },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        take: first + 1,
      });
      const files = rows.map((row) => ({ ...row, status: row.status && toStatusEvent(row.status) }));
      return toConnection(files, first, (file) => ({ at: file.createdAt, id: file.id }));
    },
  }),
);
