import { lexicographicSortSchema, printSchema } from 'graphql';
import { builder } from './builder.js';
import './types/file-status.js';
import './types/file.js';
import './types/upload.js';
import './types/webhooks.js';
import './types/webhook-delivery-log.js';

export const schema = builder.toSchema();

/** What schema.graphql holds: the schema printed with its types and fields sorted. */
export function printSortedSchema(): string {
  return printSchema(lexicographicSortSchema(schema)) + '\n';
}
