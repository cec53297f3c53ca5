import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExtendVideoDocument } from './gql/graphql.ts';
import { startStack, waitForTerminal, type Stack } from './helpers/stack.ts';

interface OtlpSpan {
  name: string;
  spanId: string;
  parentSpanId?: string;
  attributes?: { key: string; value: { stringValue?: string; intValue?: number | string } }[];
}
interface OtlpExport {
  resourceSpans: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
}

/** An OTLP/HTTP collector on 127.0.0.1 that keeps what it is sent. */
let collector: Server;
const bodies: string[] = [];
let stack: Stack;

beforeAll(async () => {
  collector = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.url === '/v1/traces') bodies.push(Buffer.concat(chunks).toString());
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  // The SDK's batch processor reads its delay from the environment: export within 100 ms.
  process.env.OTEL_BSP_SCHEDULE_DELAY = '100';
  stack = await startStack({
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as AddressInfo).port}`, OTEL_SERVICE_NAME: 'extendql-under-test' },
  });
});

afterAll(async () => {
  await stack?.close();
  await new Promise<void>((resolve) => collector.close(() => resolve()));
});

const exported = () => bodies.map((body) => JSON.parse(body) as OtlpExport);
const spans = () => exported().flatMap((e) => e.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)));
const attribute = (span: OtlpSpan, key: string) => span.attributes?.find((a) => a.key === key)?.value;

describe('OpenTelemetry (OTEL_EXPORTER_OTLP_ENDPOINT set)', () => {
  it('exports a span per GraphQL operation, per generation step and per Segmind call, nested, to an OTLP/HTTP collector', async () => {
    const response = await fetch(stack.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': stack.key, 'x-request-id': 'traced-request-1' },
      body: JSON.stringify({
        query: 'mutation Traced($input: ExtendVideoInput!) { extendVideo(input: $input) { __typename ... on ExtendVideoSuccess { generation { id } } } }',
        variables: { input: { videoUrl: 'https://videos.example/t.mp4', prompt: 'traced' } },
      }),
    });
    const body = (await response.json()) as { data: { extendVideo: { generation: { id: string } } } };
    expect((await waitForTerminal(stack, body.data.extendVideo.generation.id)).status).toBe('SUCCEEDED');

    await expect.poll(() => spans().map((s) => s.name), { timeout: 10_000 }).toEqual(
      expect.arrayContaining(['graphql mutation Traced', 'generation step', 'segmind submit', 'segmind status', 'segmind result']),
    );
    const operation = spans().find((s) => s.name === 'graphql mutation Traced')!;
    expect(attribute(operation, 'extendql.request_id')?.stringValue).toBe('traced-request-1');
    expect(attribute(operation, 'graphql.operation.type')?.stringValue).toBe('mutation');

    // Upstream calls are children of the step that made them.
    const submit = spans().find((s) => s.name === 'segmind submit')!;
    const parent = spans().find((s) => s.spanId === submit.parentSpanId);
    expect(parent?.name).toBe('generation step');
    expect(attribute(submit, 'http.request.method')?.stringValue).toBe('POST');

    const service = exported()[0]!.resourceSpans[0]!.resource.attributes.find((a) => a.key === 'service.name');
    expect(service?.value.stringValue).toBe('extendql-under-test');
    // What leaves for the collector never carries a key.
    for (const raw of bodies) {
      expect(raw).not.toContain(stack.segmindKey);
      expect(raw).not.toContain(stack.key);
    }
  });

  it('records upstream failures on their span', async () => {
    stack.segmind.faults.inject('submit', { kind: 'http', status: 400, body: JSON.stringify({ error: 'bad input upstream' }) });
    const result = await stack.execute(ExtendVideoDocument, { input: { videoUrl: 'https://videos.example/u.mp4', prompt: 'fails upstream' } });
    const answer = result.data!.extendVideo;
    if (answer.__typename !== 'ExtendVideoSuccess') throw new Error(answer.__typename);
    expect((await waitForTerminal(stack, answer.generation.id)).status).toBe('FAILED');
    await expect
      .poll(() => spans().filter((s) => s.name === 'segmind submit').map((s) => attribute(s, 'http.response.status_code')?.intValue), { timeout: 10_000 })
      .toContainEqual(expect.anything());
    const failed = spans().find((s) => s.name === 'segmind submit' && attribute(s, 'http.response.status_code') !== undefined)!;
    expect(Number(attribute(failed, 'http.response.status_code')!.intValue)).toBe(400);
    expect(attribute(failed, 'extendql.error_code')?.stringValue).toBe('UPSTREAM_BAD_REQUEST');
  });
});
