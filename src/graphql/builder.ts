import SchemaBuilder from '@pothos/core';
import { GraphQLScalarType, Kind, type ValueNode } from 'graphql';
import { GraphQLUpload, type FileUpload } from 'graphql-upload-minimal';
import type { GraphQLContext } from './context.js';
import { clientError } from './errors.js';

export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  DefaultFieldNullability: false;
  Scalars: {
    JSON: { Input: unknown; Output: unknown };
    DateTime: { Input: Date; Output: Date };
    Upload: { Input: Promise<FileUpload>; Output: never };
  };
}>({ defaultFieldNullability: false });

function literalValue(node: ValueNode): unknown {
  switch (node.kind) {
    case Kind.INT:
    case Kind.FLOAT:
      return Number(node.value);
    case Kind.STRING:
    case Kind.BOOLEAN:
    case Kind.ENUM:
      return node.value;
    case Kind.NULL:
      return null;
    case Kind.LIST:
      return node.values.map(literalValue);
    case Kind.OBJECT:
      return Object.fromEntries(node.fields.map((field) => [field.name.value, literalValue(field.value)]));
    default:
      return undefined;
  }
}

builder.addScalarType(
  'JSON',
  new GraphQLScalarType({
    name: 'JSON',
    description: 'Any JSON value.',
    serialize: (value) => value,
    parseValue: (value) => value,
    parseLiteral: literalValue,
  }),
);

/** A date, a time and its zone, as toISOString writes them; `Date` alone would take "2026" or "May 1". */
const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

function parseDateTime(value: unknown): Date {
  const date = typeof value === 'string' && ISO_DATE_TIME.test(value) ? new Date(value) : null;
  // Years 1 to 9999 in UTC: JavaScript takes a year 0, which PostgreSQL refuses (a masked error).
  const year = date?.getUTCFullYear() ?? NaN;
  if (!date || Number.isNaN(date.getTime()) || year < 1 || year > 9999) {
    // A GraphQLError, which Yoga shows: it masks any other error as "Unexpected error.".
    throw clientError('BAD_USER_INPUT', 'DateTime is an ISO-8601 date and time with its zone, such as 2026-11-29T08:00:00Z');
  }
  return date;
}

builder.addScalarType(
  'DateTime',
  new GraphQLScalarType<Date, string>({
    name: 'DateTime',
    description: 'An ISO-8601 timestamp in UTC.',
    serialize: (value) => (value as Date).toISOString(),
    parseValue: parseDateTime,
  }),
);

builder.addScalarType('Upload', GraphQLUpload as GraphQLScalarType<Promise<FileUpload>, never>);

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
