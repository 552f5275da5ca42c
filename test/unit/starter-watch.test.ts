// Which starters the launcher watches by default: package managers, recognised by command line.
import { describe, expect, it } from 'vitest';
import { isPackageManager } from '../../dist/launcher/starter-watch.js';

describe('package manager recognition (the launcher watches these starters by default)', () => {
  it.each([
    'npm exec ringtrain -np 2 -- node train.js',
    'npm run start',
    'npx ringtrain -np 2',
    'node /usr/lib/node_modules/npm/bin/npm-cli.js exec ringtrain',
    'node /usr/lib/node_modules/yarn/bin/yarn.js run train',
    'node /home/u/.local/share/pnpm/pnpm.cjs exec ringtrain',
    'bun run train',
  ])('%s is a package manager', (command) => expect(isPackageManager(command)).toBe(true));

  it.each([
    "sh -c 'ringtrain' -np 2",
    '-bash',
    'node /work/project/node_modules/vitest/vitest.mjs run',
    'node train-npm-model.js',
    'tmux new -s npmish',
    'systemd --user',
  ])('%s is not', (command) => expect(isPackageManager(command)).toBe(false));
});
