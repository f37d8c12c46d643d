import type { Logger } from '../domain/ports.ts';

const nothing = () => {};

/** A logger that writes nothing: for tests and benchmarks. */
export const silentLogger: Logger = { debug: nothing, info: nothing, warn: nothing, error: nothing };
