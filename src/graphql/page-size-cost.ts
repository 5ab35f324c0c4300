import { costLimitRule, type CostLimitOptions } from '@escape.tech/graphql-armor-cost-limit';
import {
  GraphQLError,
  Kind,
  TypeInfo,
  validate,
  visit,
  visitWithTypeInfo,
  type ArgumentNode,
  type DocumentNode,
  type FieldNode,
  type GraphQLSchema,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';

/** The arguments graphql-armor multiplies a list's cost by, when they are literals. */
const PAGE_SIZE_ARGUMENTS = ['first', 'last'];

/**
 * The page size each list field of `document` will run with, written into the document as a
 * literal `first` (or `last`): from the request's variables, or the argument's default when left
 * out (null when none could be written); and whether any was not a literal, which is the
 * document's own property, whatever this request's variables hold.
 */
function withPageSizesWritten(
  schema: GraphQLSchema,
  document: DocumentNode,
  variables: Record<string, unknown>,
): { written: DocumentNode | null; literalOnly: boolean } {
  const typeInfo = new TypeInfo(schema);
  const variableDefaults = new Map<string, unknown>();
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OPERATION_DEFINITION) continue;
    for (const variable of definition.variableDefinitions ?? []) {
      if (variable.defaultValue?.kind === Kind.INT) variableDefaults.set(variable.variable.name.value, Number(variable.defaultValue.value));
    }
  }
  let written = false;
  let literalOnly = true;
  const literal = (name: string, value: unknown): ArgumentNode | null =>
    Number.isInteger(value) ? { kind: Kind.ARGUMENT, name: { kind: Kind.NAME, value: name }, value: { kind: Kind.INT, value: String(value) } } : null;
  const result = visit(
    document,
    visitWithTypeInfo(typeInfo, {
      Field(node: FieldNode) {
        const definition = typeInfo.getFieldDef()?.args.find((arg) => PAGE_SIZE_ARGUMENTS.includes(arg.name));
        if (!definition) return undefined;
        const given = node.arguments?.find((arg) => arg.name.value === definition.name);
        if (given?.value.kind === Kind.INT) return undefined;
        literalOnly = false;
        // As the field will read it: a variable's value, else the variable's default, else the argument's.
        const variable = given?.value.kind === Kind.VARIABLE ? given.value.name.value : null;
        const value = variable === null ? undefined : (variables[variable] ?? variableDefaults.get(variable));
        const size = literal(definition.name, value ?? definition.defaultValue);
        if (!size) return undefined;
        written = true;
        return { ...node, arguments: [...(node.arguments ?? []).filter((arg) => arg !== given), size] };
      },
    }),
  );
  return { written: written ? result : null, literalOnly };
}

/**
 * graphql-armor's cost limit, again once the variables are known, with the options its plugin has
 * (which report a refusal rather than throw it). At validation it multiplies a list's cost by
 * `first` only when `first` is a literal: `first: $n`, or `first` left to its default, counted as
 * 1, so 15 aliases of a 100-row page passed as cheaply as one row each.
 */
export function usePageSizeCost(costLimit: CostLimitOptions): Plugin {
  // A document with literal sizes only needs no second count; Yoga hands the same parsed
  // document to every request of one query text, so that is learnt once. From the document, never
  // from one request's values: a request whose `$n` is "x" writes no size, and had it marked the
  // document, that text would have gone uncounted for every tenant after it.
  const literalOnly = new WeakSet<DocumentNode>();
  return {
    onExecute({ args, setResultAndStopExecution }) {
      if (literalOnly.has(args.document)) return;
      const { written, literalOnly: literal } = withPageSizesWritten(args.schema, args.document, (args.variableValues ?? {}) as Record<string, unknown>);
      if (literal) literalOnly.add(args.document);
      if (!written) return;
      const [refusal] = validate(args.schema, written, [costLimitRule(costLimit)]);
      if (refusal) setResultAndStopExecution({ errors: [new GraphQLError(refusal.message, { extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } })] });
    },
  };
}
