import { getOperationAST, Kind, type DocumentNode, type OperationDefinitionNode } from 'graphql';

/** A query whose top-level fields are all introspection (`__schema`, `__type`, `__typename`). */
function asksOnlyIntrospection(operation: OperationDefinitionNode): boolean {
  return (
    operation.operation === 'query' &&
    operation.selectionSet.selections.every((selection) => selection.kind === Kind.FIELD && selection.name.value.startsWith('__'))
  );
}

/** Whether the operation that runs asks only for introspection fields, which need no key. */
export function isIntrospection(document: DocumentNode, operationName: string | null | undefined): boolean {
  const operation = getOperationAST(document, operationName);
  return operation != null && asksOnlyIntrospection(operation);
}

/** Whether every operation of the document is introspection only, whichever one would run. */
export function isIntrospectionDocument(document: DocumentNode): boolean {
  const operations = document.definitions.filter((definition) => definition.kind === Kind.OPERATION_DEFINITION);
  return operations.length > 0 && operations.every(asksOnlyIntrospection);
}
