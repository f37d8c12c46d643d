import { api } from './harness.ts';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';

export interface TestKey {
  id: string;
  name: string;
  key: string;
  /** `Authorization: Bearer <key>` */
  headers: Record<string, string>;
}

/** Makes an API key through the admin API (as an operator would). */
export async function createKey(url: string, name: string, limits?: Record<string, number>, adminToken = ADMIN_TOKEN): Promise<TestKey> {
  const created = await api(url, 'POST', '/admin/keys', limits ? { name, limits } : { name }, { authorization: `Bearer ${adminToken}` });
  if (created.status !== 201) throw new Error(`could not create a key: ${created.status} ${JSON.stringify(created.body)}`);
  const key = String(created.body['key']);
  return { id: String(created.body['id']), name, key, headers: { authorization: `Bearer ${key}` } };
}

export async function revokeKey(url: string, id: string, adminToken = ADMIN_TOKEN): Promise<number> {
  return (await api(url, 'DELETE', `/admin/keys/${id}`, undefined, { authorization: `Bearer ${adminToken}` })).status;
}

export const admin = (adminToken = ADMIN_TOKEN) => ({ authorization: `Bearer ${adminToken}` });
