// Preloaded by `npm run soak` into the proxy it starts (node --import): when that process
// exits, writes what is still alive in it (process.getActiveResourcesInfo(): servers, sockets,
// watchers, timers) and its exit code, as JSON, to the file named by SOAK_EXIT_REPORT. The CLI
// ends in process.exit(), so an exit code of 0 alone would not show anything left behind.
import { writeFileSync } from 'node:fs';

export interface ExitReport {
  code: number;
  resources: string[];
}

const file = process.env.SOAK_EXIT_REPORT;
if (file) {
  process.on('exit', (code) => {
    const report: ExitReport = { code, resources: process.getActiveResourcesInfo() };
    writeFileSync(file, JSON.stringify(report));
  });
}
