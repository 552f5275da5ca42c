import { defineConfig } from 'vitest/config';

// Two projects: `unit` holds in-process tests of pure functions (no processes, no rings; seconds,
// files in parallel), `integration` everything that starts real processes, sockets and rings.
// `npm test` runs unit first so a broken parser fails in seconds, not after minutes of rings.
export default defineConfig({
  test: {
    reporters: ['default'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: ['test/unit/**', '**/node_modules/**'],
          // Tests start real processes and real rings; running files one at a time keeps a 2-core
          // machine from starving ranks into spurious timeouts.
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
