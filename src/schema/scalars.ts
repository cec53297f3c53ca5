import { GraphQLError } from 'graphql';
import { DateTimeISOResolver } from 'graphql-scalars';
import { isUploadedFile } from '../generations/rules.ts';
import { builder } from './builder.ts';

// graphql-scalars' RFC 3339 date-time, named DateTime here: it refuses what is not a real date-time
// (2026-02-30, "yesterday") in variables and literals alike, and serializes Dates as ISO 8601 strings.
builder.addScalarType('DateTime', DateTimeISOResolver, {
  description: 'An ISO 8601 (RFC 3339) timestamp in UTC, e.g. 2026-11-24T17:00:00.000Z',
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
