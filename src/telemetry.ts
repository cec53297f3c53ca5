import { INVALID_SPAN_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Span } from '@opentelemetry/api';
import { getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/**
 * Optional OpenTelemetry tracing. Without OTEL_EXPORTER_OTLP_ENDPOINT nothing is registered and
 * every span below is the API's no-op, so tracing costs nothing. pg-boss reports its own spans to
 * the same provider once one is registered.
 */
export const tracer = trace.getTracer('extendql');

/** Whether this process registered an exporter (startTelemetry): until then every span is a no-op. */
let tracing = false;
/** The span `inSpan` hands out while nothing is traced: it records nothing. */
const NOT_RECORDED = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

export interface TelemetryConfig {
  /** OTLP/HTTP endpoint, e.g. http://collector:4318 (traces go to <endpoint>/v1/traces). */
  endpoint: string;
  serviceName: string;
}

/**
 * Registers an OTLP/HTTP exporter for this process; the returned function flushes and unregisters
 * it. The SDK is loaded only here: a process that does not trace does not carry it in its heap.
 */
export async function startTelemetry(config: TelemetryConfig): Promise<() => Promise<void>> {
  const [{ OTLPTraceExporter }, { resourceFromAttributes }, { BatchSpanProcessor, NodeTracerProvider }] = await Promise.all([
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/sdk-trace-node'),
  ]);
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': config.serviceName }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${config.endpoint.replace(/\/+$/, '')}/v1/traces` }))],
  });
  provider.register();
  tracing = true;
  return async () => {
    tracing = false;
    await provider.shutdown();
    trace.disable();
  };
}

/**
 * Runs `work` in a span that records an exception and its error status; attributes may be added on
 * the span. Without an exporter, `work` runs as it is: the API's no-op span would still cost a
 * context object or three per call, and these calls are the worker's hottest path.
 */
export async function inSpan<T>(name: string, attributes: Attributes, work: (span: Span) => Promise<T>, kind: SpanKind = SpanKind.INTERNAL): Promise<T> {
  if (!tracing) return work(NOT_RECORDED);
  return tracer.startActiveSpan(name, { kind, attributes }, async (span) => {
    try {
      return await work(span);
    } catch (error) {
      span.recordException(error as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
      throw error;
    } finally {
      span.end();
    }
  });
}

/** One span per GraphQL operation, named after it, with the request id of the access log. */
export function useTracing(requestIdOf: (context: object) => string | undefined): Plugin {
  return {
    onExecute({ args }) {
      const operation = getOperationAST(args.document, args.operationName);
      const name = operation?.name?.value ?? 'anonymous';
      const type = operation?.operation ?? 'query';
      const span = tracer.startSpan(`graphql ${type} ${name}`, {
        kind: SpanKind.SERVER,
        attributes: { 'graphql.operation.name': name, 'graphql.operation.type': type, 'extendql.request_id': requestIdOf(args.contextValue as object) ?? '' },
      });
      return {
        onExecuteDone({ result }) {
          const errors = 'errors' in result ? result.errors : undefined;
          if (errors?.length) span.setStatus({ code: SpanStatusCode.ERROR, message: errors[0]!.message });
          span.end();
        },
      };
    },
  };
}
