import { GraphQLError, Kind, type SelectionSetNode, type ValidationContext, type ValidationRule } from 'graphql';

/** Root fields named `name`, including those reached through fragments. */
function countRootFields(context: ValidationContext, selectionSet: SelectionSetNode, name: string, seen = new Set<string>()): number {
  let count = 0;
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) count += selection.name.value === name ? 1 : 0;
    else if (selection.kind === Kind.INLINE_FRAGMENT) count += countRootFields(context, selection.selectionSet, name, seen);
    else if (!seen.has(selection.name.value)) {
      seen.add(selection.name.value);
      const fragment = context.getFragment(selection.name.value);
      if (fragment) count += countRootFields(context, fragment.selectionSet, name, seen);
    }
  }
  return count;
}

/** Each extendVideo spends money upstream, so aliases must not multiply it: one per operation. */
export const OneExtendVideoPerOperation: ValidationRule = (context) => ({
  OperationDefinition(operation) {
    if (operation.operation !== 'mutation') return;
    const count = countRootFields(context, operation.selectionSet, 'extendVideo');
    if (count > 1) {
      context.reportError(new GraphQLError(`Only one extendVideo is allowed per operation; this one has ${count}`, { nodes: operation }));
    }
  },
});
