// A reader for server-sent events (https://html.spec.whatwg.org/multipage/server-sent-events.html),
// as graphql-yoga sends subscription results: `event: next` frames whose data is one JSON
// execution result, then `event: complete`. Comment lines (`:`) are its keep-alive pings.

export interface SseEvent {
  /** The `event:` field; "message" when the frame had none. */
  event: string;
  /** The `data:` lines, joined with "\n". */
  data: string;
}

/** The events of a text/event-stream body, in order. Stopping early cancels the body. */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent, void, undefined> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let event = '';
  let data: string[] = [];
  try {
    for (;;) {
      const { done, value } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      // Lines end in \n or \r\n; a final line without its end waits for more.
      let end: number;
      while ((end = buffer.indexOf('\n')) !== -1) {
        const line = buffer.slice(0, buffer[end - 1] === '\r' ? end - 1 : end);
        buffer = buffer.slice(end + 1);
        if (line === '') {
          // A blank line ends the frame; one without data is not an event.
          if (data.length > 0) yield { event: event || 'message', data: data.join('\n') };
          event = '';
          data = [];
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon === -1 ? line : line.slice(0, colon);
        let fieldValue = colon === -1 ? '' : line.slice(colon + 1);
        if (fieldValue.startsWith(' ')) fieldValue = fieldValue.slice(1);
        if (field === 'event') event = fieldValue;
        else if (field === 'data') data.push(fieldValue);
        // `id` and `retry` do not matter here: the CLI resubscribes itself.
      }
      if (done) return;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
