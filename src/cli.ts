#!/usr/bin/env node
// llm-fallback <command>: serve | validate FILE…  (controller and inject come with the Kubernetes work)
import { loadFiles } from './chain/load-files.ts';
import { formatProblem } from './chain/file-source.ts';
import { parseServeOptions, readEnvironment, UsageError } from './config/options.ts';
import { createLogger } from './observability/logger.ts';
import { ConfigError, startServe } from './serve.ts';

const USAGE = `usage: llm-fallback <command>

commands:
  serve [--config DIR | --kubernetes] [--host 127.0.0.1] [--port 4000] [--admin-port 4001]
        [--log-level info] [--default-upstream URL] [--credentials-dir DIR]
        [--drain-timeout-ms 25000] [--body-limit BYTES]
      Proxy on HOST:PORT with chains from DIR (default: the examples/ folder).
      Every flag is also an environment variable LLM_FALLBACK_<FLAG>.
  validate FILE...
      Check FallbackChain YAML as serve would; exit 1 on any problem.
`;

async function main(argv: string[]): Promise<number> {
  const [command = 'serve', ...rest] = argv;
  if (command === 'serve') return serve(rest);
  if (command === 'validate') return validate(rest);
  if (command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return 0;
  }
  process.stderr.write(`unknown command "${command}"\n\n${USAGE}`);
  return 2;
}

async function serve(args: string[]): Promise<number> {
  const options = parseServeOptions(args);
  if (options.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const logger = createLogger(options.logLevel);
  const running = await startServe(options, { logger });
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      logger.info({ signal }, 'draining');
      void running.drain().then(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  logger.info('stopped');
  return 0;
}

async function validate(files: string[]): Promise<number> {
  if (files.length === 0) throw new UsageError('validate needs at least one FILE');
  const { docs, problems } = await loadFiles(files, readEnvironment());
  for (const p of problems) process.stderr.write(`${formatProblem(p)}\n`);
  for (const { doc, source } of docs) process.stdout.write(`ok ${source} FallbackChain/${doc.metadata.name} (model ${doc.spec.model ?? doc.metadata.name}, ${doc.spec.steps.length} steps)\n`);
  if (problems.length > 0) {
    process.stderr.write(`${problems.length} problem(s)\n`);
    return 1;
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof ConfigError) process.stderr.write(`${error.message}\n`);
    else if (error instanceof UsageError) process.stderr.write(`${error.message}\n\n${USAGE}`);
    else process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(error instanceof UsageError ? 2 : 1);
  },
);
