import WebSocket from 'ws';

/** One graphql-transport-ws message as received. */
export interface WsMessage {
  type: string;
  id?: string;
  payload?: unknown;
}

/**
 * A graphql-ws socket driven by hand, message by message, so that tests can send what no
 * well-behaved client would and see exactly what the server answers and how the socket ends.
 */
export class RawSocket {
  readonly messages: WsMessage[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: (() => void)[] = [];

  readonly socket: WebSocket;
  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.on('message', (data: Buffer) => {
      this.messages.push(JSON.parse(data.toString('utf8')) as WsMessage);
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.closed = new Promise((resolve) =>
      socket.once('close', (code, reason) => {
        resolve({ code, reason: reason.toString('utf8') });
        for (const wake of this.waiters.splice(0)) wake();
      }),
    );
    socket.on('error', () => {});
  }

  /**
   * Opens a socket on the GraphQL URL (http://...), sends connection_init with `params`, and waits
   * for the acknowledgement (or the close that refuses it).
   */
  static async open(graphqlUrl: string, params: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<RawSocket> {
    const socket = new WebSocket(graphqlUrl.replace(/^http/, 'ws'), 'graphql-transport-ws', { headers });
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    const raw = new RawSocket(socket);
    raw.send({ type: 'connection_init', payload: params });
    await raw.until(() => raw.messages.some((message) => message.type === 'connection_ack')).catch(() => {});
    return raw;
  }

  get open(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  send(message: object): void {
    this.socket.send(JSON.stringify(message));
  }

  subscribe(id: string, query: string, variables: Record<string, unknown> = {}): void {
    this.send({ id, type: 'subscribe', payload: { query, variables } });
  }

  /** Messages for one operation id. */
  of(id: string): WsMessage[] {
    return this.messages.filter((message) => message.id === id);
  }

  /** Waits until `done` holds (checked after each message and at the close), or fails after `timeoutMs`. */
  async until(done: () => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (this.socket.readyState === WebSocket.CLOSED) throw new Error(`the socket closed: ${JSON.stringify(await this.closed)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; messages so far: ${JSON.stringify(this.messages).slice(0, 2000)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.socket.close();
  }
}
