// `npx ringtrain` inside this source checkout: npm (>= 10) sees that the project itself has a bin of
// that name and "installs" the checkout into its npx cache (~/.npm/_npx/<hash>, as a link) to run
// it, which runs this package's `install` and `prepare` with npm_command=exec. A full native build
// there is slow, and any failure or interruption leaves a cache folder without package.json that
// breaks every later `npx ringtrain` with "ENOENT ... _npx/<hash>/package.json". So in that case the
// lifecycle scripts only check that the checkout is built, say what to run when it is not, and
// never fail. An installed package (no tsconfig.json, src/, CMakeLists.txt) is not a checkout.
import fs from 'node:fs';
import path from 'node:path';

/** True when npm runs a lifecycle script of this checkout for `npx`/`npm exec`. */
export function npxSelfInstall(root) {
  return (
    process.env.npm_command === 'exec' &&
    ['tsconfig.json', 'src', 'CMakeLists.txt'].every((f) => fs.existsSync(path.join(root, f)))
  );
}

export const RUN_INSTEAD = 'or run the launcher directly: `node dist/cli.js ...` (or `npm exec -- ringtrain ...`)';
