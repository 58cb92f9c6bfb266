// The environment a test gives the sidecar it starts as a child process: this process's,
// without LLM_FALLBACK_* (they are the sidecar's flags) or the test runner's context; and,
// where the test chooses the child's node flags itself, without NODE_OPTIONS.
export function childEnv({ keepNodeOptions = true }: { keepNodeOptions?: boolean } = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('LLM_FALLBACK_') || k === 'NODE_TEST_CONTEXT' || (!keepNodeOptions && k === 'NODE_OPTIONS')) continue;
    env[k] = v;
  }
  return env;
}
