import { realpathSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';

/**
 * What names the store every node of a cluster must share. Nodes compare
 * these through Redis at start-up: a node whose store is not the others' is
 * refused, since sessions moving between nodes would find different
 * histories. PostgreSQL: the server, database and schema (from the URL, not
 * its credentials). SQLite: the machine and the file's real path, so worker
 * processes on one machine may share one file (SQLite serialises writers
 * across processes and the fence check is inside each write) but nodes on
 * different machines may not. Memory: this process alone.
 */
export function storeIdentity(kind: 'sqlite' | 'postgres' | 'memory', where: string, nodeId: string, databaseUrl: string): string {
  switch (kind) {
    case 'memory':
      return `memory:${nodeId}`;
    case 'postgres': {
      const url = new URL(databaseUrl);
      const options = url.searchParams.get('options') ?? '';
      const schema = /search_path\s*=\s*([^\s,]+)/.exec(options)?.[1] ?? 'public';
      return `postgres://${url.hostname}:${url.port || 5432}${url.pathname}#${schema}`;
    }
    case 'sqlite': {
      let path = resolve(where);
      try {
        path = realpathSync(path);
      } catch {
        // Not created yet: the resolved path names it.
      }
      return `sqlite:${hostname()}:${path}`;
    }
  }
}
