// The image's node flags (Dockerfile: its NODE_OPTIONS, then the node flags of its ENTRYPOINT,
// for the V8 flags Node does not take from NODE_OPTIONS), as the benchmarks start Node with
// them: the sidecar and the Node floor / bare server it is compared with alike, so the distance
// between them is llm-fallback's own. test/bench/image-flags.test.ts keeps this list equal to
// the Dockerfile's, so a change of flags there is measured here too.
export const IMAGE_FLAGS: readonly string[] = [
  '--max-semi-space-size=4',
  '--max-old-space-size=96',
  '--preserve-symlinks',
  '--no-concurrent-recompilation',
  '--no-maglev',
  '--liftoff-only',
  '--no-memory-reducer-favors-memory',
  '--expose-gc',
];
