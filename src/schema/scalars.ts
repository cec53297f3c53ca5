import { GraphQLError, Kind } from 'graphql';
import { isUploadedFile } from '../generations/rules.js';
import { builder } from './builder.js';

builder.scalarType('DateTime', {
  description: 'An ISO 8601 timestamp in UTC, e.g. 2026-11-24T17:00:00.000Z',
  serialize: (value) => value.toISOString(),
  parseValue: (value) => {
    const date = new Date(String(value));
    if (Number.isNaN(date.getTime())) throw new GraphQLError('DateTime must be an ISO 8601 timestamp');
    return date;
  },
  parseLiteral: (ast) => {
    if (ast.kind !== Kind.STRING) throw new GraphQLError('DateTime must be a string');
    return new Date(ast.value);
  },
});

// Files arrive through the GraphQL multipart request spec, which yoga parses into File objects.
builder.scalarType('Upload', {
  description: 'A file sent in a multipart request (https://github.com/jaydenseric/graphql-multipart-request-spec)',
  serialize: () => {
    throw new GraphQLError('Upload is an input-only scalar');
  },
  parseValue: (value) => {
    if (isUploadedFile(value)) return value;
    throw new GraphQLError('Upload must be a file sent as a multipart request part');
  },
  parseLiteral: () => {
    throw new GraphQLError('Upload values must be sent as multipart request parts, not inline');
  },
});
