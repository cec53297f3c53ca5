import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { createGatewayRuntime } from '@graphql-hive/gateway-runtime';
import { composeServices } from '@theguild/federation-composition';
import { parse } from 'graphql';
import { createYoga } from 'graphql-yoga';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExtendVideoDocument } from './gql/graphql.ts';
import { startStack, waitForTerminal, type Stack } from './helpers/stack.ts';

// A second, independent subgraph that extends extendql's Generation entity by its id.
const REVIEWS_SDL = /* GraphQL */ `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.6", import: ["@key"])
  type Generation @key(fields: "id") {
    id: ID!
    reviewNote: String!
  }
  type Query {
    reviewsVersion: String!
  }
`;

const listen = async (server: Server) => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
};

let stack: Stack;
let reviews: Server;
let gateway: Server;
let gatewayUrl: string;

beforeAll(async () => {
  stack = await startStack();
  const reviewsYoga = createYoga({
    schema: buildSubgraphSchema({
      typeDefs: parse(REVIEWS_SDL),
      resolvers: {
        Query: { reviewsVersion: () => '1' },
        Generation: { __resolveReference: (reference: { id: string }) => ({ id: reference.id, reviewNote: `reviewed ${reference.id.slice(0, 8)}` }) },
      },
    }),
  });
  reviews = createServer(reviewsYoga);
  const reviewsUrl = await listen(reviews);

  // Compose from the committed subgraph SDL: it is what a user's gateway would be given.
  const composed = composeServices([
    { name: 'extendql', typeDefs: parse(await readFile(new URL('../subgraph.graphql', import.meta.url), 'utf8')), url: stack.graphqlUrl },
    { name: 'reviews', typeDefs: parse(REVIEWS_SDL), url: reviewsUrl },
  ]);
  if (composed.errors?.length) throw new Error(`composition failed: ${composed.errors.map((e) => e.message).join('; ')}`);

  const runtime = createGatewayRuntime({
    supergraph: composed.supergraphSdl!,
    logging: false,
    // extendql authorizes every subgraph request by the caller's own key.
    propagateHeaders: { fromClientToSubgraphs: ({ request }) => ({ 'x-api-key': request.headers.get('x-api-key') }) },
  });
  gateway = createServer(runtime);
  gatewayUrl = await listen(gateway);
});

afterAll(async () => {
  gateway?.close();
  reviews?.close();
  await stack?.close();
});

const viaGateway = async (query: string, variables: Record<string, unknown> = {}, key: string | null = stack.key) => {
  const response = await fetch(gatewayUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key && { 'x-api-key': key }) },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as { data?: Record<string, unknown>; errors?: { message: string }[] };
};

describe('Apollo Federation', () => {
  it('composes with another subgraph, and a gateway answers fields of both in one operation', async () => {
    const created = await stack.execute(ExtendVideoDocument, { input: { videoUrl: 'https://videos.example/a.mp4', prompt: 'through the gateway' } });
    const extended = created.data!.extendVideo;
    if (extended.__typename !== 'ExtendVideoSuccess') throw new Error(extended.__typename);
    const id = extended.generation.id;
    await waitForTerminal(stack, id);

    const result = await viaGateway(
      `query ($id: ID!) {
        reviewsVersion
        generation(id: $id) { id status prompt video { width } reviewNote }
        generations(first: 5) { edges { node { id status reviewNote } } }
      }`,
      { id },
    );
    expect(result.errors).toBeUndefined();
    expect(result.data).toEqual({
      reviewsVersion: '1',
      generation: { id, status: 'SUCCEEDED', prompt: 'through the gateway', video: { width: 960 }, reviewNote: `reviewed ${id.slice(0, 8)}` },
      generations: { edges: [{ node: { id, status: 'SUCCEEDED', reviewNote: `reviewed ${id.slice(0, 8)}` } }] },
    });
  });

  it('keeps tenancy through the gateway: entity lookups see only the caller’s generations', async () => {
    const other = await stack.newKey('gateway stranger');
    const [mine] = (await stack.app.db.generation.findMany({ take: 1 })).map((g) => g.id);
    const { encodeGlobalID } = await import('@pothos/plugin-relay');
    const result = await viaGateway(`query ($id: ID!) { generation(id: $id) { id reviewNote } }`, { id: encodeGlobalID('Generation', mine!) }, other);
    expect(result.data?.generation ?? null).toBeNull();
    const anonymous = await viaGateway(`{ generations(first: 1) { totalCount } }`, {}, null);
    expect(anonymous.errors?.[0]?.message).toMatch(/API key/);
  });
});
