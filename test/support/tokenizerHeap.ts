/**
 * Run with --expose-gc: counts `argv[2]` random 256-character runs (text no
 * one sent before, so each is a new entry in the tokenizer's merge cache) and
 * prints the heap they left behind after a full collection, in bytes.
 */
import { countTokens } from '../../src/infra/tokenizer.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const collect = gc;
const runs = Number(process.argv[2] ?? 20_000);
let seed = 7;
const letter = () => String.fromCharCode(97 + ((seed = (seed * 48_271) % 2_147_483_647) % 26));
const run = () => Array.from({ length: 256 }, letter).join('');
collect();
const before = process.memoryUsage().heapUsed;
for (let index = 0; index < runs; index += 1) countTokens(run());
collect();
collect();
process.stdout.write(String(process.memoryUsage().heapUsed - before));
