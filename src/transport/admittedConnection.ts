import type { Duplex } from 'node:stream';
import type { Caller } from './authenticate.ts';
import type { WsConnection } from './wsConnection.ts';

// The admission each TCP socket holds, for the one 'close' listener every socket shares.
const admittedOf = new WeakMap<Duplex, AdmittedConnection>();

function releaseOnClose(this: Duplex): void {
  admittedOf.get(this)?.release();
}

/**
 * What one socket's admission holds: the node's connection slot and the
 * key's, given back once, when the TCP socket closes, whatever happened to
 * the handshake; and the connection it became, told if the key is revoked
 * (even before the handshake ends). An object rather than closures: one is
 * kept per open connection, and memory per connection is a target we
 * measure (the closures and their contexts were ~1 KB of each).
 */
export class AdmittedConnection {
  readonly caller: Caller;
  #connection: WsConnection | undefined;
  #revoked = false;
  #releaseSlot: (() => void) | undefined;
  #untrack: (() => void) | undefined;

  constructor(caller: Caller, releaseSlot: () => void) {
    this.caller = caller;
    this.#releaseSlot = releaseSlot;
  }

  /** The key's count of open connections holds this one until release. */
  tracked(untrack: () => void): void {
    this.#untrack = untrack;
  }

  /** The key was revoked: the connection is told now, or as soon as it exists. */
  revoke(): void {
    this.#revoked = true;
    this.#connection?.revoke();
  }

  attach(connection: WsConnection): void {
    this.#connection = connection;
    if (this.#revoked) connection.revoke();
  }

  /** Gives the slots back; only the first call does anything. */
  release(): void {
    const releaseSlot = this.#releaseSlot;
    const untrack = this.#untrack;
    this.#releaseSlot = this.#untrack = undefined;
    this.#connection = undefined;
    releaseSlot?.();
    untrack?.();
  }

  /** From now on the slots go back when `socket` closes. */
  releaseWhenClosed(socket: Duplex): void {
    admittedOf.set(socket, this);
    socket.on('close', releaseOnClose);
  }
}
