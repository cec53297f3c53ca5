import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { createGraphQLError, type Plugin } from 'graphql-yoga';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { OneExtendVideoPerOperation } from '../schema/operation-rules.ts';

/** The most an operation may cost (armor's measure: fields, weighted by depth). */
export const MAX_OPERATION_COST = 5000;
/** The most tokens an operation's text may have. */
export const MAX_TOKENS = 2000;

/** Limits on the shape of operations; generous for real clients, fatal for abusive ones. */
export function securityPlugins(): Plugin[] {
  return [
    EnvelopArmorPlugin({
      maxDepth: { n: 12, ignoreIntrospection: true },
      maxAliases: { n: 15 },
      maxTokens: { n: MAX_TOKENS },
      maxDirectives: { n: 20 },
      costLimit: { maxCost: MAX_OPERATION_COST, ignoreIntrospection: true },
      blockFieldSuggestion: { enabled: true },
    }) as Plugin,
    // Browsers send "simple" cross-site requests without custom headers; every real client of
    // ours sends x-api-key, so requiring a custom header costs them nothing.
    useCSRFPrevention({ requestHeaders: ['x-api-key', 'x-graphql-yoga-csrf'] }),
    // GraphiQL fills its editor from the URL and sends the stored key: another site may not frame
    // it (clickjacking). The studio's page sets its own policy (src/http/studio.ts).
    {
      onResponse({ response }) {
        if (!response.headers.get('content-type')?.startsWith('text/html')) return;
        response.headers.set('x-frame-options', 'DENY');
        response.headers.set('content-security-policy', "frame-ancestors 'none'");
      },
    },
    { onValidate: ({ addValidationRule }) => addValidationRule(OneExtendVideoPerOperation) },
    // yoga parses `variables`/`extensions` of GET and form requests with a bare JSON.parse;
    // malformed JSON there is the client's mistake (400), not a server error (500).
    {
      onRequestParse({ requestParser, setRequestParser }) {
        if (!requestParser) return;
        setRequestParser(async (request) => {
          try {
            return await requestParser(request);
          } catch (error) {
            if (error instanceof SyntaxError) {
              throw createGraphQLError(`Malformed JSON in the request: ${error.message}`, { extensions: { http: { status: 400 } } });
            }
            throw error;
          }
        });
      },
    },
  ];
}

/**
 * The bound on request bodies of unknown length (chunked uploads), in place of yoga's
 * `maxRequestBodySize` (set to false), which re-streams every body through a TransformStream.
 * Bodies that declare a length were judged by it in `bodyLimitExceeded` before yoga saw them
 * (Node's parser never reads past a declared length); only the others are counted as they stream.
 */
export function useBodyLimit(maxBytes: number): Plugin {
  return {
    onRequestParse({ request, requestParser, setRequestParser, fetchAPI }) {
      // Multipart bodies are counted by their own parser (src/http/multipart.ts).
      if (request.headers.has('content-length') || /^multipart\/form-data\b/i.test(request.headers.get('content-type') ?? '')) return;
      const body = request.body;
      if (!requestParser || !body) return;
      let seen = 0;
      // A native stream needs the native TransformStream; yoga's own request bodies are ponyfills.
      const Transform = body instanceof ReadableStream ? globalThis.TransformStream : fetchAPI.TransformStream;
      const counted = body.pipeThrough(
        new Transform<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            seen += chunk.byteLength;
            if (seen <= maxBytes) return controller.enqueue(chunk);
            controller.error(createGraphQLError(`Request bodies are limited to ${maxBytes} bytes`, { extensions: { http: { status: 413 } } }));
          },
        }),
      );
      setRequestParser((req) =>
        requestParser(new fetchAPI.Request(req.url, { method: req.method, headers: req.headers, signal: req.signal, body: counted, duplex: 'half' } as RequestInit)),
      );
    },
  };
}

/** A GraphQL multipart request (file upload), which gets the larger body limit. */
export function isMultipart(req: IncomingMessage): boolean {
  return req.method === 'POST' && /^multipart\/form-data\b/i.test(req.headers['content-type'] ?? '');
}

/**
 * Refuses request bodies over `maxBytes` before anything reads them. JSON bodies must declare
 * their length, which every GraphQL client does. Multipart bodies may also arrive chunked
 * (streaming upload clients): the multipart parser counts those as it reads.
 */
export function bodyLimitExceeded(req: IncomingMessage, res: ServerResponse, maxBytes: number): boolean {
  if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return false;
  const length = req.headers['content-length'];
  const reject = (status: number, error: string) => {
    res.writeHead(status, { 'content-type': 'application/json', connection: 'close' }).end(JSON.stringify({ errors: [{ message: error }] }));
    req.resume();
    return true;
  };
  if (length === undefined) {
    return req.headers['transfer-encoding'] && !isMultipart(req) ? reject(411, 'A Content-Length header is required') : false;
  }
  if (!/^\d+$/.test(length)) return reject(400, 'Invalid Content-Length');
  if (Number(length) > maxBytes) return reject(413, `Request bodies are limited to ${maxBytes} bytes`);
  return false;
}
