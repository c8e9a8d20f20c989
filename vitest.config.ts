import { defineConfig } from 'vitest/config';
import LongestFirst from './test/support/longest-first';
import { stopWithParent } from './test/support/stop-with-parent';

stopWithParent();

/**
 * Four depths, one command (`npm test`): unit (AWS clients mocked), infra (the synthesized template
 * and cdk-nag), integration (DynamoDB Local, started once per run), and end to end (the local
 * runtime as a user starts it, over real HTTP).
 */
export default defineConfig({
  test: {
    // End-to-end files spend much of their time waiting on the runtime they started (a job's
    // progress, a restart): three files at once keep two cores busy where two would leave gaps.
    maxWorkers: 3,
    // The longest files first, so no long file starts near the end (see the sequencer).
    sequence: { sequencer: LongestFirst },
    globalSetup: ['test/support/cdk-outdir-global-setup.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          setupFiles: ['test/support/unit-setup.ts', 'test/support/cdk-outdir.ts'],
          // A bound on a hang, not a speed target: a few unit tests start a process or parse
          // 300,000 fields, seconds on a 2-core machine running the end-to-end files beside them.
          testTimeout: 30_000,
          // Files share their worker's modules (the AWS SDK, zod, Powertools load once per worker):
          // 33 s of CPU became 19 here. Each file mocks what it uses and resets it, and the setup file
          // (run per file) restores every client mock as the file ends.
          isolate: false,
        },
      },
      {
        test: {
          name: 'infra',
          include: ['test/infra/**/*.test.ts'],
          setupFiles: ['test/support/cdk-outdir.ts'],
          testTimeout: 60_000,
          // Files share their worker's modules: each loads the CDK and cdk-nag (seconds of CPU)
          // once per worker, not once per file. The tests keep no state between files.
          isolate: false,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/support/dynamodb-global-setup.ts'],
          setupFiles: ['test/support/lambda-env.ts'],
          // As the unit files: modules load once per worker (95 s of CPU became 76). Each file makes its
          // own tables and clients.
          isolate: false,
          // One DynamoDB Local for all files, each file with its own set of tables, so files run
          // beside each other and beside the end-to-end files (the shared pool of `maxWorkers`).
          // Held to one at a time (`fileParallelism: false`), vitest ran the project apart, after
          // the others, on one core of two for almost two minutes.
          // Bounds on a hung test, not speed targets: a loaded 2-core machine runs these several times slower.
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          // The functions are bundled and each file's context synthesized once, before any file starts a
          // runtime (which then starts from the shared caches).
          globalSetup: ['test/support/runtimes-global-setup.ts'],
          setupFiles: ['test/support/cdk-outdir.ts'],
          // A test may start the runtime twice (synthesis with bundling, then Java): on a loaded
          // 2-core machine each start can take over a minute. Bounds on a hang, not speed targets.
          testTimeout: 360_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
