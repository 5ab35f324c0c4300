import type { AcceptedFile } from '../../uploads/accept-upload.js';
import { isUuid } from '../../uuid.js';
import type { StatusEvent } from '../../status/model.js';
import { toStatusEvent } from '../../status/status-rows.js';
import type { Prisma } from '../../generated/prisma/client.js';
import { builder } from '../builder.js';
import { clientError } from '../errors.js';
import { FileStatus, ProcessingStatus } from './file-status.js';

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

const PageInfo = builder
  .objectRef<{ hasNextPage: boolean; endCursor: string | null }>('PageInfo')
  .implement({
    fields: (t) => ({
      hasNextPage: t.exposeBoolean('hasNextPage'),
      endCursor: t.exposeString('endCursor', { nullable: true }),
    }),
  });

const FileEdge = builder.objectRef<{ cursor: string; node: FileShape }>('FileEdge').implement({
  fields: (t) => ({
    cursor: t.exposeString('cursor'),
    node: t.field({ type: File, resolve: (edge) => edge.node }),
  }),
});

const FileConnection = builder
  .objectRef<{ edges: { cursor: string; node: FileShape }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } }>('FileConnection')
  .implement({
    fields: (t) => ({
      edges: t.field({ type: [FileEdge], resolve: (c) => c.edges }),
      pageInfo: t.field({ type: PageInfo, resolve: (c) => c.pageInfo }),
    }),
  });

const MAX_PAGE = 100;

function encodeCursor(file: FileShape): string {
  return Buffer.from(JSON.stringify([file.createdAt.toISOString(), file.id])).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [string, string];
    const date = new Date(createdAt);
    // As toISOString wrote it, so within the years PostgreSQL takes: a forged year -1000 failed there.
    if (Number.isNaN(date.getTime()) || date.toISOString() !== createdAt || !/^\d{4}-/.test(createdAt) || !isUuid(id)) throw new Error('bad cursor');
    return { createdAt: date, id };
  } catch {
    throw clientError('BAD_USER_INPUT', 'The cursor "after" is not one this API gave out.');
  }
}

builder.queryField('file', (t) =>
  t.field({
    type: File,
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, { id }, { tenant, services }) => {
      if (!isUuid(String(id))) return null;
      const file = await services.prisma.file.findUnique({ where: { id: String(id) }, include: { status: true } });
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
      first: t.arg.int({ defaultValue: 20, description: `At most ${MAX_PAGE}.` }),
      after: t.arg.string(),
      status: t.arg({ type: ProcessingStatus }),
    },
    resolve: async (_root, args, { tenant, services }) => {
      const first = args.first ?? 20;
      if (first < 0 || first > MAX_PAGE) throw clientError('BAD_USER_INPUT', `first must be between 0 and ${MAX_PAGE}.`);
      const where: Prisma.FileWhereInput = { tenantId: tenant.id };
      if (args.status) where.status = { status: args.status };
      if (args.after) {
        const { createdAt, id } = decodeCursor(args.after);
        where.OR = [{ createdAt: { lt: createdAt } }, { createdAt, id: { lt: id } }];
      }
      const rows = await services.prisma.file.findMany({
        where,
        include: { status: true },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        take: first + 1,
      });
      const nodes = rows.slice(0, first).map((row) => ({ ...row, status: row.status && toStatusEvent(row.status) }));
      const edges = nodes.map((node) => ({ cursor: encodeCursor(node), node }));
      return { edges, pageInfo: { hasNextPage: rows.length > first, endCursor: edges.at(-1)?.cursor ?? null } };
    },
  }),
);
