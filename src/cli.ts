#!/usr/bin/env node
// llm-fallback <command>: serve | validate FILE… | controller | inject -f FILE
import { loadFiles } from './chain/load-files.ts';
import { formatProblem } from './chain/file-source.ts';
import { parseControllerOptions, parseInjectOptions, parseServeOptions, parseValidateOptions, readEnvironment, UsageError } from './config/options.ts';
import { KnownSecrets } from './observability/known-secrets.ts';
import { bufferedStdout, createLogger } from './observability/logger.ts';
import { ConfigError, startServe } from './serve.ts';

const USAGE = `usage: llm-fallback <command>

commands:
  serve [--config DIR | --kubernetes [--kubeconfig FILE] [--namespace NS]]
        [--host 127.0.0.1] [--port 4000] [--admin-host HOST] [--admin-port 4001]
        [--log-level info] [--default-upstream URL] [--credentials-dir DIR]
        [--drain-timeout-ms 25000] [--body-limit 10485760] [--body-budget 41943040]
        [--request-timeout-ms 30000] [--max-connections 1024] [--admin-max-connections 64]
        [--allowed-hosts NAME,...] [--allow-local-credentials]
      Proxy on HOST:PORT with chains from DIR (default: the examples/ folder).
      Every flag is also an environment variable LLM_FALLBACK_<FLAG>.
  validate [--kubernetes [--allow-local-credentials]] FILE...
      Check FallbackChain YAML as serve would; exit 1 on any problem. --kubernetes: as the
      sidecar and the controller check FallbackChain objects (no \${VAR} expansion; only
      apiKey.secretKey, unless --allow-local-credentials).
  controller --tls-cert-file FILE --tls-key-file FILE [--host 0.0.0.0] [--port 9443]
        [--health-port 8081] [--sidecar-defaults FILE] [--kubeconfig FILE] [--namespace NS]
        [--lease-name llm-fallback-controller] [--identity NAME] [--log-level info]
      Mutating webhook (POST /mutate-pods) that injects the sidecar; on the leader replica
      (Lease NS/NAME), FallbackChain status and chain-reader RoleBindings.
  inject -f FILE|- [--sidecar-defaults FILE]
      Print the manifest (Pod, Deployment, StatefulSet, DaemonSet, Job, CronJob, List; several
      documents allowed) with the sidecar injected, as the webhook would.
`;

async function main(argv: string[]): Promise<number> {
  const [command = 'serve', ...rest] = argv;
  if (command === 'serve') return serve(rest);
  if (command === 'validate') return validate(rest);
  if (command === 'controller') return controller(rest);
  if (command === 'inject') return inject(rest);
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
  const output = bufferedStdout();
  const secrets = new KnownSecrets();
  const logger = createLogger(options.logLevel, output.stream, secrets);
  const running = await startServe(options, { logger, secrets });
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      logger.info({ signal }, 'draining');
      void running.drain().then(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  logger.info('stopped');
  // The log is buffered and main() ends in process.exit(), which would drop what is still
  // buffered (the drained requests' lines, 'stopped'): flush and close it first.
  await output.close();
  return 0;
}

async function validate(args: string[]): Promise<number> {
  const { files, kubernetes } = parseValidateOptions(args);
  if (files.length === 0) throw new UsageError('validate needs at least one FILE');
  const { docs, problems } = await loadFiles(files, readEnvironment(), kubernetes ? { kubernetes } : {});
  for (const p of problems) process.stderr.write(`${formatProblem(p)}\n`);
  for (const { doc, source } of docs)
    process.stdout.write(`ok ${source} FallbackChain/${doc.metadata.name} (model ${doc.spec.model ?? doc.metadata.name}, ${doc.spec.steps.length} steps)\n`);
  if (problems.length > 0) {
    process.stderr.write(`${problems.length} problem(s)\n`);
    return 1;
  }
  return 0;
}

async function controller(args: string[]): Promise<number> {
  const options = parseControllerOptions(args);
  if (options.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const logger = createLogger(options.logLevel);
  const { startController } = await import('./controller.ts');
  const { SidecarDefaultsError } = await import('./k8s/sidecar-settings.ts');
  const { KubeAccessError } = await import('./k8s/kubeconfig.ts');
  let running;
  try {
    running = await startController(options, { logger });
  } catch (error) {
    // Start-up trouble the operator can fix (bad defaults file, no cluster access, TLS file
    // missing, port taken): the reason, not a stack trace.
    const systemError = typeof (error as NodeJS.ErrnoException).syscall === 'string';
    if (!(error instanceof SidecarDefaultsError || error instanceof KubeAccessError || systemError)) throw error;
    process.stderr.write(`controller: ${(error as Error).message}\n`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      logger.info({ signal }, 'stopping');
      void running.stop().then(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}

async function inject(args: string[]): Promise<number> {
  const options = parseInjectOptions(args);
  if (options.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const { readFile } = await import('node:fs/promises');
  const { injectYaml } = await import('./k8s/workload.ts');
  const { loadSidecarSettings, SidecarDefaultsError } = await import('./k8s/sidecar-settings.ts');
  let settings;
  try {
    settings = await loadSidecarSettings(options.sidecarDefaultsFile);
  } catch (error) {
    if (!(error instanceof SidecarDefaultsError)) throw error;
    process.stderr.write(`${error.message}\n`);
    return 1;
  }
  let injected;
  try {
    const text = options.filename === '-' ? await readStdin() : await readFile(options.filename, 'utf8');
    injected = injectYaml(text, settings);
  } catch (error) {
    process.stderr.write(`${options.filename}: ${(error as Error).message}\n`);
    return 1;
  }
  const { output, reports } = injected;
  for (const report of reports) if (report.outcome !== 'injected') process.stderr.write(`${report.ref}: ${report.outcome}: ${report.reason}\n`);
  process.stdout.write(output);
  return 0;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
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
