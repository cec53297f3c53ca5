import { createHash, timingSafeEqual } from 'node:crypto';
import { GraphQLError, type ExecutionResult } from 'graphql';
import { createGraphQLError, maskError, type Plugin, type YogaLogger, type YogaServerOptions } from 'graphql-yoga';
import { isUnavailableError, RETRY_AFTER_SECONDS } from '../db/unavailable.ts';
import type { Logger } from '../logger.ts';

/**
 * yoga's log lines, through our logger. Errors that are not the client's (masked ones) are logged
 * with their stack; an outage of the database is logged once per request as a warning, without one.
 */
export function yogaLogging(logger: Logger): YogaLogger {
  return {
    debug: (...args) => logger.debug(args.map(String).join(' ')),
    info: (...args) => logger.info(args.map(String).join(' ')),
    warn: (...args) => logger.warn(args.map(String).join(' ')),
    error: (...args) => {
      if (args.some(isUnavailableError)) {
        logger.warn({ err: args.map((arg) => (arg instanceof Error ? arg.message : String(arg))).join(' ') }, 'request failed: the database or job queue is unavailable');
      } else {
        logger.error(args.map((arg) => (arg instanceof Error ? arg.stack : String(arg))).join(' '));
      }
    },
  };
}

/**
 * yoga's masking, except that an unreachable database or queue is told as it is: a retryable
 * SERVICE_UNAVAILABLE with HTTP 503 and Retry-After, instead of a 500 "Unexpected error.".
 */
export const maskedErrors: YogaServerOptions<object, object>['maskedErrors'] = {
  maskError(error, message, isDev) {
    if (!isUnavailableError(error)) return maskError(error, message, isDev);
    const located = error instanceof GraphQLError ? error : undefined;
    return createGraphQLError('The service is temporarily unavailable; retry shortly', {
      nodes: located?.nodes,
      path: located?.path,
      extensions: { code: 'SERVICE_UNAVAILABLE', retryAfterSeconds: RETRY_AFTER_SECONDS, http: { status: 503, headers: { 'Retry-After': String(RETRY_AFTER_SECONDS) } } },
    });
  },
};

/**
 * GraphQL over HTTP: a response that carries data is a 200, whatever its errors say, so that a
 * client keeps the data (and reads each error's code). An error's HTTP status (401 for a missing
 * key, 503 during an outage) is the response's only when the whole request was refused.
 */
export function useStatusOnlyWithoutData(): Plugin {
  return {
    onResultProcess({ result, setResult }) {
      if (Array.isArray(result) || Symbol.asyncIterator in result) return;
      const single = result as ExecutionResult;
      if (single.data == null || !single.errors?.some((error) => error.extensions?.http)) return;
      setResult({
        ...single,
        errors: single.errors.map((error) => {
          const http = error.extensions.http as { status?: number; headers?: Record<string, string> } | undefined;
          if (!http?.status) return error;
          return createGraphQLError(error.message, {
            nodes: error.nodes,
            path: error.path,
            originalError: error.originalError ?? undefined,
            extensions: { ...error.extensions, http: { headers: http.headers } },
          });
        }),
      });
    },
  };
}

/**
 * With a token, /metrics answers only `Authorization: Bearer <token>` (compared in constant time);
 * must come before the Prometheus plugin, which serves the endpoint.
 */
export function useMetricsToken(token: string | null, endpoint = '/metrics'): Plugin {
  if (token === null) return {};
  const expected = createHash('sha256').update(token).digest();
  return {
    onRequest({ url, request, endResponse, fetchAPI }) {
      if (url.pathname !== endpoint) return;
      const given = /^Bearer (.+)$/i.exec(request.headers.get('authorization') ?? '')?.[1] ?? '';
      if (timingSafeEqual(createHash('sha256').update(given).digest(), expected)) return;
      endResponse(new fetchAPI.Response('A bearer token is required for /metrics\n', { status: 401, headers: { 'www-authenticate': 'Bearer realm="metrics"', 'content-type': 'text/plain' } }));
    },
  };
}
