// The Dockerfile read as instructions, for the tests that check it (test/docker) and the ones
// that hold the benchmarks to the image's node flags (test/bench): one reading of it.

export interface Instruction {
  op: string;
  args: string;
  stage: number;
}

/** Dockerfile instructions (comments dropped, `\` continuations joined), with their stage index. */
export function parseDockerfile(text: string): { instructions: Instruction[]; argDefaults: Map<string, string> } {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const instructions: Instruction[] = [];
  const argDefaults = new Map<string, string>();
  let stage = -1;
  for (const line of lines) {
    const match = /^(\S+)\s+(.*)$/.exec(line);
    if (!match) continue;
    const op = (match[1] ?? '').toUpperCase();
    const args = (match[2] ?? '').trim();
    if (op === 'FROM') stage++;
    if (op === 'ARG' && stage === -1) {
      const [name, value] = args.split('=');
      if (name && value !== undefined) argDefaults.set(name, value);
    }
    instructions.push({ op, args, stage });
  }
  return { instructions, argDefaults };
}

/** NAME=value pairs of an ENV instruction or of a RUN's leading assignments (quotes removed). */
export function assignments(args: string): Map<string, string> {
  return new Map([...args.matchAll(/(\w+)=("[^"]*"|\S+)/g)].map((m) => [m[1] ?? '', (m[2] ?? '').replace(/^"|"$/g, '')]));
}
