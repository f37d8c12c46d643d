import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { openSqliteStore } from '../../src/infra/sqliteStore.ts';
import { describeOwnershipContract } from './ownershipContract.ts';
import { describeStoreContract } from './storeContract.ts';

const directory = mkdtempSync(join(tmpdir(), 'llm-chat-sqlite-'));
let count = 0;
afterAll(() => rmSync(directory, { recursive: true, force: true }));

describeStoreContract('sqlite', async () => openSqliteStore({ path: join(directory, `contract-${++count}.sqlite`) }), { refusesDuplicateOrder: true });
describeOwnershipContract('sqlite', async () => openSqliteStore({ path: join(directory, `contract-${++count}.sqlite`) }));
