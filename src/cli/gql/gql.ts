/* eslint-disable */
import * as types from './graphql.ts';



/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "fragment GenerationState on Generation {\n  id\n  status\n  upstreamStatus\n  elapsedSeconds\n  prompt\n  duration\n  quality\n  motionMode\n  createdAt\n  completedAt\n  error {\n    code\n    message\n    upstreamStatus\n  }\n  video {\n    url\n    contentType\n    byteSize\n    width\n    height\n    durationSeconds\n    sha256\n  }\n}\n\nmutation CliExtendVideo($input: ExtendVideoInput!) {\n  extendVideo(input: $input) {\n    __typename\n    ... on ExtendVideoSuccess {\n      generation {\n        ...GenerationState\n      }\n    }\n    ... on Error {\n      message\n    }\n    ... on InvalidInputError {\n      fields {\n        path\n        message\n      }\n    }\n    ... on NotFoundError {\n      id\n    }\n    ... on RateLimitedError {\n      rateLimit\n      max\n      retryAfterSeconds\n    }\n    ... on InsufficientCreditsError {\n      requiredUsd\n      availableUsd\n      creditLimit\n    }\n    ... on IdempotencyConflictError {\n      idempotencyKey\n    }\n  }\n}\n\nsubscription CliGenerationUpdated($id: ID!) {\n  generationUpdated(id: $id) {\n    ...GenerationState\n  }\n}\n\nquery CliHistory($first: Int!, $after: String, $status: GenerationStatus) {\n  generations(first: $first, after: $after, status: $status) {\n    totalCount\n    edges {\n      node {\n        id\n        status\n        duration\n        quality\n        createdAt\n        prompt\n      }\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}": typeof types.GenerationStateFragmentDoc,
};
const documents: Documents = {
    "fragment GenerationState on Generation {\n  id\n  status\n  upstreamStatus\n  elapsedSeconds\n  prompt\n  duration\n  quality\n  motionMode\n  createdAt\n  completedAt\n  error {\n    code\n    message\n    upstreamStatus\n  }\n  video {\n    url\n    contentType\n    byteSize\n    width\n    height\n    durationSeconds\n    sha256\n  }\n}\n\nmutation CliExtendVideo($input: ExtendVideoInput!) {\n  extendVideo(input: $input) {\n    __typename\n    ... on ExtendVideoSuccess {\n      generation {\n        ...GenerationState\n      }\n    }\n    ... on Error {\n      message\n    }\n    ... on InvalidInputError {\n      fields {\n        path\n        message\n      }\n    }\n    ... on NotFoundError {\n      id\n    }\n    ... on RateLimitedError {\n      rateLimit\n      max\n      retryAfterSeconds\n    }\n    ... on InsufficientCreditsError {\n      requiredUsd\n      availableUsd\n      creditLimit\n    }\n    ... on IdempotencyConflictError {\n      idempotencyKey\n    }\n  }\n}\n\nsubscription CliGenerationUpdated($id: ID!) {\n  generationUpdated(id: $id) {\n    ...GenerationState\n  }\n}\n\nquery CliHistory($first: Int!, $after: String, $status: GenerationStatus) {\n  generations(first: $first, after: $after, status: $status) {\n    totalCount\n    edges {\n      node {\n        id\n        status\n        duration\n        quality\n        createdAt\n        prompt\n      }\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}": types.GenerationStateFragmentDoc,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "fragment GenerationState on Generation {\n  id\n  status\n  upstreamStatus\n  elapsedSeconds\n  prompt\n  duration\n  quality\n  motionMode\n  createdAt\n  completedAt\n  error {\n    code\n    message\n    upstreamStatus\n  }\n  video {\n    url\n    contentType\n    byteSize\n    width\n    height\n    durationSeconds\n    sha256\n  }\n}\n\nmutation CliExtendVideo($input: ExtendVideoInput!) {\n  extendVideo(input: $input) {\n    __typename\n    ... on ExtendVideoSuccess {\n      generation {\n        ...GenerationState\n      }\n    }\n    ... on Error {\n      message\n    }\n    ... on InvalidInputError {\n      fields {\n        path\n        message\n      }\n    }\n    ... on NotFoundError {\n      id\n    }\n    ... on RateLimitedError {\n      rateLimit\n      max\n      retryAfterSeconds\n    }\n    ... on InsufficientCreditsError {\n      requiredUsd\n      availableUsd\n      creditLimit\n    }\n    ... on IdempotencyConflictError {\n      idempotencyKey\n    }\n  }\n}\n\nsubscription CliGenerationUpdated($id: ID!) {\n  generationUpdated(id: $id) {\n    ...GenerationState\n  }\n}\n\nquery CliHistory($first: Int!, $after: String, $status: GenerationStatus) {\n  generations(first: $first, after: $after, status: $status) {\n    totalCount\n    edges {\n      node {\n        id\n        status\n        duration\n        quality\n        createdAt\n        prompt\n      }\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}"): typeof import('./graphql.ts').GenerationStateFragmentDoc;


export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}
