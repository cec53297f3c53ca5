import {
  GraphQLError,
  GraphQLUnionType,
  Kind,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValueNode,
} from 'graphql';
import { createGraphQLError, type Plugin } from 'graphql-yoga';

/**
 * Bounds on federation's `_entities(representations:)`. Its list arrives as a variable, so the
 * static limits (armor's cost and alias limits) never see its length: one request of 13 000
 * representations under the body limit once ran the process out of memory. Before execution,
 * each `_entities` field's list is counted (at most `maxRepresentations`, and representations
 * times the fields selected on each count against `maxCost`) and checked for shape, so that a
 * malformed one is the client's error instead of an internal one.
 */
export function useEntityLimits(options: { maxRepresentations: number; maxCost: number }): Plugin {
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const document = args.document as DocumentNode;
      const operation = document.definitions.find(
        (d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION && (!args.operationName || d.name?.value === args.operationName),
      );
      if (!operation || operation.operation !== 'query') return;
      const fragments = fragmentsOf(document);
      const fields = entitiesFields(operation.selectionSet, fragments);
      if (!fields.length) return;
      const entityTypes = entityTypeNames(args.schema as GraphQLSchema);
      const variables = (args.variableValues ?? {}) as Record<string, unknown>;
      let count = 0;
      let cost = 0;
      for (const field of fields) {
        const representations = representationsOf(field, variables);
        if (!Array.isArray(representations)) continue; // the type system refuses it
        const problem = representations.map((r, i) => malformed(r, i, entityTypes)).find(Boolean);
        if (problem) return setResultAndStopExecution({ errors: [badRepresentations(problem, field)] });
        count += representations.length;
        cost += representations.length * selectedFields(field.selectionSet, fragments);
      }
      if (count > options.maxRepresentations) {
        return setResultAndStopExecution({
          errors: [badRepresentations(`At most ${options.maxRepresentations} representations are resolved per request; this one has ${count}`, fields[0]!, 'TOO_MANY_REPRESENTATIONS')],
        });
      }
      if (cost > options.maxCost) {
        return setResultAndStopExecution({
          errors: [badRepresentations(`Query cost limit of ${options.maxCost} exceeded by the representations: ${cost}`, fields[0]!, 'COST_LIMIT_EXCEEDED')],
        });
      }
    },
  };
}

/** Like a validation error: 400 for application/graphql-response+json, 200 for application/json. */
function badRepresentations(message: string, node: FieldNode, code = 'BAD_USER_INPUT'): GraphQLError {
  return createGraphQLError(message, { nodes: [node], extensions: { code, http: { status: 400, spec: true } } });
}

function fragmentsOf(document: DocumentNode): Map<string, FragmentDefinitionNode> {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  return fragments;
}

/** Root `_entities` fields, also those inside fragments (aliases make several possible). */
function entitiesFields(selectionSet: SelectionSetNode, fragments: Map<string, FragmentDefinitionNode>, seen = new Set<string>()): FieldNode[] {
  return selectionSet.selections.flatMap((selection) => {
    if (selection.kind === Kind.FIELD) return selection.name.value === '_entities' ? [selection] : [];
    if (selection.kind === Kind.INLINE_FRAGMENT) return entitiesFields(selection.selectionSet, fragments, seen);
    const fragment = fragments.get(selection.name.value);
    if (!fragment || seen.has(fragment.name.value)) return [];
    seen.add(fragment.name.value);
    return entitiesFields(fragment.selectionSet, fragments, seen);
  });
}

/** Fields selected under a field, fragments included: what each representation costs. */
function selectedFields(selectionSet: SelectionSetNode | undefined, fragments: Map<string, FragmentDefinitionNode>, depth = 0): number {
  if (!selectionSet || depth > 20) return 1;
  let count = 0;
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) count += 1 + (selection.selectionSet ? selectedFields(selection.selectionSet, fragments, depth + 1) : 0);
    else if (selection.kind === Kind.INLINE_FRAGMENT) count += selectedFields(selection.selectionSet, fragments, depth + 1);
    else count += selectedFields(fragments.get(selection.name.value)?.selectionSet, fragments, depth + 1);
  }
  return Math.max(count, 1);
}

function representationsOf(field: FieldNode, variables: Record<string, unknown>): unknown {
  const argument = field.arguments?.find((a) => a.name.value === 'representations');
  return argument ? valueOf(argument.value, variables) : undefined;
}

/** A literal or variable as plain JSON (the `_Any` scalar takes values as they are). */
function valueOf(node: ValueNode, variables: Record<string, unknown>): unknown {
  switch (node.kind) {
    case Kind.VARIABLE:
      return variables[node.name.value];
    case Kind.LIST:
      return node.values.map((v) => valueOf(v, variables));
    case Kind.OBJECT:
      return Object.fromEntries(node.fields.map((f) => [f.name.value, valueOf(f.value, variables)]));
    case Kind.INT:
    case Kind.FLOAT:
      return Number(node.value);
    case Kind.NULL:
      return null;
    default:
      return node.value;
  }
}

function entityTypeNames(schema: GraphQLSchema): Set<string> {
  const union = schema.getType('_Entity');
  return new Set(union instanceof GraphQLUnionType ? union.getTypes().map((t) => t.name) : []);
}

/** Why representation `i` cannot be resolved, or null. Key fields are checked by each entity. */
function malformed(representation: unknown, i: number, entityTypes: Set<string>): string | null {
  if (typeof representation !== 'object' || representation === null || Array.isArray(representation)) {
    return `representations[${i}] must be an object with __typename and the entity's key fields`;
  }
  const typename = (representation as { __typename?: unknown }).__typename;
  if (typeof typename !== 'string' || !entityTypes.has(typename)) {
    return `representations[${i}].__typename must name an entity type: ${[...entityTypes].join(', ')}`;
  }
  return null;
}
