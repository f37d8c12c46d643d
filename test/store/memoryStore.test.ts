import { createMemoryStore } from '../../src/infra/memoryStore.ts';
import { describeStoreContract } from './storeContract.ts';

describeStoreContract('memory', async () => createMemoryStore(), { refusesDuplicateOrder: false });
