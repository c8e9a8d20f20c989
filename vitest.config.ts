import { defineConfig } from 'vitest/config';

/**
 * Four depths, one command (`npm test`): unit (AWS clients mocked), infra (the synthesized template
 * and cdk-nag), integration (DynamoDB Local, started once per run), and end to end (the local
 * runtime as a user starts it, over real HTTP).
 */
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          setupFiles: ['test/support/unit-setup.ts'],
        },
      },
      {
        test: { name: 'infra', include: ['test/infra/**/*.test.ts'], testTimeout: 60_000 },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/support/dynamodb-global-setup.ts'],
          setupFiles: ['test/support/lambda-env.ts'],
          // Bounds on a hung test, not speed targets: a loaded 2-core machine runs these several times slower.
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          // A test may start the runtime twice (synthesis with bundling, then Java): on a loaded
          // 2-core machine each start can take over a minute. Bounds on a hang, not speed targets.
          testTimeout: 360_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
