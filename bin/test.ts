// `npm test`: the static checks (`npm run lint`) beside the test suite (`vitest run`), not before it.
// The type check takes about 20 s of one core; the suite's set-up (synthesizing the stack once per
// context) mostly uses one core too, so on a 2-core machine the two overlap instead of adding up.
// A failed check stops the suite (it would have kept it from starting); its output comes whole.
import { type ChildProcess, spawn } from 'node:child_process';

const lint = spawn('npm', ['run', '--silent', 'lint'], { stdio: ['ignore', 'pipe', 'pipe'] });
const lintOutput: Buffer[] = [];
lint.stdout?.on('data', (chunk: Buffer) => lintOutput.push(chunk));
lint.stderr?.on('data', (chunk: Buffer) => lintOutput.push(chunk));
const suite = spawn('npx', ['vitest', 'run', ...process.argv.slice(2)], { stdio: 'inherit' });

const exited = (child: ChildProcess) =>
  new Promise<number>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0))));
const suiteExit = exited(suite);

// Ctrl-C or a supervisor's SIGTERM reaches both.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
  process.on(signal, () => {
    lint.kill(signal);
    suite.kill(signal);
  });

const lintCode = await exited(lint);
const checks = Buffer.concat(lintOutput).toString('utf8');
if (lintCode !== 0) {
  suite.kill('SIGTERM');
  await suiteExit;
  process.stderr.write(`\nnpm run lint failed:\n${checks}\n`);
  process.exit(lintCode);
}
const suiteCode = await suiteExit;
process.stdout.write(`\nnpm run lint passed (biome, tsc, madge, redocly).\n`);
process.exit(suiteCode);
