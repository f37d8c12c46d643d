import { afterAll, describe } from 'vitest';
import { openPostgresStore } from '../../src/infra/postgresStore.ts';
import { dropSchemas, postgresReachable, TEST_DATABASE_URL, uniqueSchema } from '../support/postgres.ts';
import { describeOwnershipContract } from './ownershipContract.ts';
import { describeStoreContract } from './storeContract.ts';

const reachable = await postgresReachable();
const schemas: string[] = [];
afterAll(() => (reachable ? dropSchemas(schemas) : undefined));

describe.skipIf(!reachable)('PostgreSQL (real local server, a schema per store)', () => {
  describeStoreContract('postgres', async () => {
    const schema = uniqueSchema();
    schemas.push(schema);
    return openPostgresStore({ connectionString: TEST_DATABASE_URL, schema });
  });
  describeOwnershipContract('postgres', async () => {
    const schema = uniqueSchema();
    schemas.push(schema);
    return openPostgresStore({ connectionString: TEST_DATABASE_URL, schema });
  });
});
