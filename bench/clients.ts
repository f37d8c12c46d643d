/**
 * The bench's client connections, one kind per server family: the `ws`
 * client for llm-chat and the bare-ws peer (frames checked with string
 * tests, not JSON.parse, so the generator stays cheap next to the server it
 * loads), and the real `socket.io-client` for the Socket.IO peer (WebSocket
 * transport only; it parses every packet, as any Socket.IO application does).
 */
import WebSocket from 'ws';
import { io } from 'socket.io-client';
import type { ManagerOptions, SocketOptions } from 'socket.io-client';

export type ClientKind = 'ws' | 'socketio';

export interface ClientConnection {
  /** The session the server opened for it (from its `session` frame). */
  sessionId: string;
  send(text: string): void;
  readonly open: boolean;
  terminate(): void;
}

/** Told of every `accepted` frame, every reply chunk (whether it is the reply's last), every error frame's code, and of a close once open. */
export interface FrameListener {
  accepted?(): void;
  chunk(isLast: boolean): void;
  error(code: string): void;
  closed?(why: string): void;
}

const ERROR_CODE = /"code":"([a-z_]+)"/;

/** Opens one connection; resolves once the server's `session` frame came, or with why it failed. */
export function openClient(kind: ClientKind, url: string, localAddress: string, listener: FrameListener): Promise<ClientConnection | string> {
  return kind === 'socketio' ? openSocketIo(url, localAddress, listener) : openWs(url, localAddress, listener);
}

function openWs(url: string, localAddress: string, listener: FrameListener): Promise<ClientConnection | string> {
  return new Promise((resolve) => {
    const socket = new WebSocket(url, { localAddress, perMessageDeflate: false, handshakeTimeout: 30_000 });
    const connection: ClientConnection = {
      sessionId: '',
      send: (text) => socket.send(text),
      get open() {
        return socket.readyState === WebSocket.OPEN;
      },
      terminate: () => socket.terminate(),
    };
    let settled = false;
    const settle = (result: ClientConnection | string) => {
      if (settled) return;
      settled = true;
      resolve(result);
    };
    socket.on('message', (data) => {
      const text = data.toString();
      if (!settled) {
        if (text.startsWith('{"type":"session"')) connection.sessionId = text.slice(text.indexOf('"sessionId":"') + 13, text.lastIndexOf('"'));
        settle(text.startsWith('{"type":"session"') ? connection : text.slice(0, 80));
        return;
      }
      if (text.startsWith('{"type":"chunk"')) listener.chunk(text.includes('"is_last":true'));
      else if (text.startsWith('{"type":"accepted"')) listener.accepted?.();
      else if (text.startsWith('{"type":"error"')) listener.error(ERROR_CODE.exec(text)?.[1] ?? 'unknown');
    });
    socket.on('error', (error: NodeJS.ErrnoException) => settle(error.code ?? error.message));
    socket.on('close', (code) => {
      // Only a connection that opened (a failed handshake is reported by `settle`).
      if (connection.sessionId !== '') listener.closed?.(`close ${code}`);
      settle(`close ${code}`);
    });
  });
}

function openSocketIo(url: string, localAddress: string, listener: FrameListener): Promise<ClientConnection | string> {
  const target = new URL(url);
  return new Promise((resolve) => {
    // forceNew: without it every io() to one URL shares a single connection.
    // localAddress is passed down to the `ws` client (engine.io-client picks it up).
    const options: Partial<ManagerOptions & SocketOptions> & { localAddress: string } = {
      path: target.pathname,
      transports: ['websocket'],
      forceNew: true,
      reconnection: false,
      timeout: 30_000,
      localAddress,
    };
    const socket = io(`http://${target.host}`, options);
    const connection: ClientConnection = {
      sessionId: '',
      send: (text) => socket.send(text),
      get open() {
        return socket.connected;
      },
      terminate: () => socket.disconnect(),
    };
    let settled = false;
    const settle = (result: ClientConnection | string) => {
      if (settled) return;
      settled = true;
      resolve(result);
    };
    socket.on('message', (frame: { type?: string; is_last?: boolean; code?: string; sessionId?: string }) => {
      if (!settled) {
        if (frame.type === 'session') connection.sessionId = String(frame.sessionId ?? '');
        settle(frame.type === 'session' ? connection : String(frame.type));
        return;
      }
      if (frame.type === 'chunk') listener.chunk(frame.is_last === true);
      else if (frame.type === 'accepted') listener.accepted?.();
      else if (frame.type === 'error') listener.error(String(frame.code));
    });
    socket.on('connect_error', (error: Error) => settle(error.message));
    socket.on('disconnect', (reason) => settle(`disconnect ${reason}`));
  });
}
