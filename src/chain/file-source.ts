// `serve --config DIR`: chains from YAML files, reloaded when the folder changes.
import { watch, type FSWatcher } from 'node:fs';
import type { Chain } from '../core/types.ts';
import { listConfigFiles, loadFiles, type SourcedProblem } from './load-files.ts';
import { resolveChain, type KeySources } from './resolve.ts';

export type LoadOutcome = { ok: true; chains: Chain[] } | { ok: false; problems: SourcedProblem[] };

export async function loadChainsFromDir(dir: string, keys: KeySources): Promise<LoadOutcome> {
  let files: string[];
  try {
    files = await listConfigFiles(dir);
  } catch (error) {
    return { ok: false, problems: [{ file: dir, document: 0, path: '', message: `cannot read config folder: ${(error as Error).message}` }] };
  }
  if (files.length === 0) return { ok: false, problems: [{ file: dir, document: 0, path: '', message: 'no *.yaml or *.yml files' }] };
  const { docs, problems } = await loadFiles(files, keys.env);
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, chains: docs.map(({ doc, source }) => resolveChain(doc, source, keys)) };
}

/** One line per problem: file, document, field path, reason. */
export function formatProblem(p: SourcedProblem): string {
  const where = p.document > 0 ? `${p.file} (document ${p.document})` : p.file;
  return `${where}${p.path ? ` ${p.path}` : ''}: ${p.message}`;
}

/**
 * Calls `onChange` once a burst of file events in `dirs` has settled: editors and
 * Kubernetes' atomic ConfigMap/Secret swaps produce several events per change.
 */
export function watchDirs(dirs: string[], onChange: () => void, settleMs = 100): () => void {
  let timer: NodeJS.Timeout | undefined;
  const fire = (): void => {
    clearTimeout(timer);
    timer = setTimeout(onChange, settleMs);
  };
  const watchers: FSWatcher[] = [];
  for (const dir of dirs) {
    try {
      watchers.push(watch(dir, { persistent: false }, fire));
    } catch {
      // A folder that does not exist (e.g. no credentials mounted) has nothing to watch.
    }
  }
  return () => {
    clearTimeout(timer);
    for (const w of watchers) w.close();
  };
}
