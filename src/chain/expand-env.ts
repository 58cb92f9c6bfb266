/**
 * `${VAR}` and `${VAR:-default}` in string values of config files, so the examples can
 * point at upstreams given by the environment. Applied to parsed values, never to raw
 * YAML text, so a variable's content cannot inject structure. Kubernetes objects are
 * not expanded: there the cluster is the source of truth.
 */
export function expandEnv(value: unknown, env: Readonly<Record<string, string | undefined>>, missing: Set<string>): unknown {
  if (typeof value === 'string') return expandString(value, env, missing);
  if (Array.isArray(value)) return value.map((v) => expandEnv(v, env, missing));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expandEnv(v, env, missing)]));
  }
  return value;
}

function expandString(text: string, env: Readonly<Record<string, string | undefined>>, missing: Set<string>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_match, name: string, fallback: string | undefined) => {
    const set = env[name];
    if (set !== undefined && set !== '') return set;
    if (fallback !== undefined) return fallback;
    missing.add(name);
    return '';
  });
}
