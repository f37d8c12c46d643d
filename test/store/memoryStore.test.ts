import { createMemoryStore } from '../../src/infra/memoryStore.ts';
import { describeOwnershipContract } from './ownershipContract.ts';
import { describeStoreContract } from './storeContract.ts';

describeStoreContract('memory', async () => createMemoryStore(), { refusesDuplicateOrder: false });
describeOwnershipContract('memory', async () => createMemoryStore());
