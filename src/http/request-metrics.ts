import { createCounter, createHistogram, usePrometheus, type FillLabelsFnParams } from '@graphql-yoga/plugin-prometheus';
import type { Plugin } from 'graphql-yoga';
import type { Metrics } from '../metrics.ts';

/** Distinct operation names labelled per process; later ones are counted as `other`. */
export const MAX_OPERATION_NAME_LABELS = 100;

const OPERATION_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/**
 * Label values come from the client, and each distinct set is a series that the registry keeps
 * for the life of the process: labelled as sent, unique operation names (or query strings in the
 * url) from unauthenticated requests grow memory and /metrics without bound. So an operation name
 * is kept only if it is a plausible one and among the first `limit` seen; any other is `other`.
 */
export function operationNameLabels(limit = MAX_OPERATION_NAME_LABELS): (name: string | undefined) => string {
  const seen = new Set<string>();
  return (name) => {
    if (!name) return 'Anonymous';
    if (seen.has(name)) return name;
    if (!OPERATION_NAME.test(name) || seen.size >= limit) return 'other';
    seen.add(name);
    return name;
  };
}

type HttpParams = FillLabelsFnParams & { request: Request; response: Response };

/**
 * Request duration by operation and error counts, with bounded labels: no url (its query string is
 * the client's), no error path (aliases are the client's), operation names through
 * operationNameLabels. The plugin's other defaults (a summary with sliding-window quantiles, one
 * histogram per phase, a walk of every document for deprecated fields) cost more per request than
 * the lookup they measure.
 */
export function useRequestMetrics(metrics: Metrics): Plugin {
  const registry = metrics.registry;
  const operationName = operationNameLabels();
  return usePrometheus({
    registry,
    endpoint: '/metrics',
    metrics: {
      graphql_yoga_http_duration: createHistogram<'request', 'operationName' | 'operationType' | 'method' | 'statusCode', HttpParams>({
        registry,
        histogram: {
          name: 'graphql_yoga_http_duration',
          help: 'Time spent on HTTP connection',
          labelNames: ['operationName', 'operationType', 'method', 'statusCode'],
        },
        fillLabelsFn: (params) => ({
          operationName: operationName(params.operationName),
          operationType: params.operationType ?? 'unknown',
          method: params.request.method,
          statusCode: params.response.status,
        }),
      }),
      graphql_envelop_error_result: createCounter<'parse' | 'validate' | 'context' | 'execute' | 'subscribe', 'operationName' | 'operationType' | 'phase'>({
        registry,
        counter: { name: 'graphql_envelop_error_result', help: 'Counts the amount of errors reported from all phases', labelNames: ['operationName', 'operationType', 'phase'] },
        fillLabelsFn: (params) => ({
          operationName: operationName(params.operationName),
          operationType: params.operationType ?? 'unknown',
          phase: params.errorPhase ?? 'unknown',
        }),
      }),
      graphql_envelop_request: false,
      graphql_envelop_request_duration: false,
      graphql_envelop_request_time_summary: false,
      graphql_envelop_deprecated_field: false,
      graphql_envelop_phase_parse: false,
      graphql_envelop_phase_validate: false,
      graphql_envelop_phase_context: false,
      graphql_envelop_phase_execute: false,
      graphql_envelop_phase_subscribe: false,
      graphql_envelop_schema_change: false,
    },
  });
}
