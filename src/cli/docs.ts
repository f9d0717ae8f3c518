// `make docs` / `make check`: the guides show every example of docs/examples/ exactly as the file is,
// and a script's output as test/docs/examples.test.ts last recorded it from a real run
// (docs/examples/output/<script>.txt).
//
// In README.md and docs/*.md, everything between
//   <!-- example: docs/examples/<file> -->   and   <!-- /example -->
// is generated: a link to the file, its text in a code block and, for a script, its recorded output.
// With --check, writes nothing and fails when a page differs from what it would write, when a
// marker names a missing file, or when a script of docs/examples/ is shown on no page.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const EXAMPLES_DIR = 'docs/examples';
export const OUTPUT_DIR = 'docs/examples/output';

const BLOCK = /(<!-- example: (\S+) -->\n)[\s\S]*?(<!-- \/example -->)/g;
const FENCE: Record<string, string> = { '.sh': 'sh', '.mjs': 'js' };

/** The scripts the examples test runs: docs/examples/*.sh. */
export function exampleScripts(root: string): string[] {
  return readdirSync(path.join(root, EXAMPLES_DIR))
    .filter((name) => name.endsWith('.sh'))
    .sort()
    .map((name) => `${EXAMPLES_DIR}/${name}`);
}

/** Where a script's recorded output lives. */
export const outputFile = (script: string) =>
  `${OUTPUT_DIR}/${path.basename(script, path.extname(script))}.txt`;

/** The pages that may show examples: README.md and docs/*.md. */
function pages(root: string): string[] {
  const docs = readdirSync(path.join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`);
  return ['README.md', ...docs];
}

function render(root: string, page: string, file: string): string {
  const text = readFileSync(path.join(root, file), 'utf8').trimEnd();
  const link = path.relative(path.dirname(page), file);
  let block = `\n[\`${file}\`](${link}):\n\n\`\`\`${FENCE[path.extname(file)] ?? 'text'}\n${text}\n\`\`\`\n`;
  if (file.endsWith('.sh')) {
    const recorded = path.join(root, outputFile(file));
    const output = existsSync(recorded)
      ? readFileSync(recorded, 'utf8').trimEnd()
      : '(not recorded yet: run make docs)';
    const how = `${path.relative(path.dirname(page), 'docs/development.md')}#the-examples-of-the-docs`;
    block += `\nIts output on a fresh tenant, recorded by \`make docs\` ([how](${how})):\n\n\`\`\`text\n${output}\n\`\`\`\n`;
  }
  return `${block}\n`;
}

export interface DocsState {
  /** Pages whose generated blocks differ from the files. */
  stale: string[];
  /** Markers naming missing files, and scripts no page shows. */
  problems: string[];
  /** Each page's text as it should be. */
  updated: Map<string, string>;
}

export function docsState(root: string): DocsState {
  const state: DocsState = { stale: [], problems: [], updated: new Map() };
  const shown = new Set<string>();
  for (const page of pages(root)) {
    const current = readFileSync(path.join(root, page), 'utf8');
    const next = current.replace(BLOCK, (whole, open: string, file: string, close: string) => {
      if (!existsSync(path.join(root, file))) {
        state.problems.push(`${page}: ${file} does not exist`);
        return whole;
      }
      shown.add(file);
      return `${open}${render(root, page, file)}${close}`;
    });
    state.updated.set(page, next);
    if (next !== current) state.stale.push(page);
  }
  for (const script of exampleScripts(root))
    if (!shown.has(script))
      state.problems.push(`${script} is shown on no page: add <!-- example: ${script} --><!-- /example -->`);
  return state;
}

function main() {
  const check = process.argv.includes('--check');
  const state = docsState(process.cwd());
  for (const problem of state.problems) console.error(`error: ${problem}`);
  if (check) {
    for (const page of state.stale)
      console.error(`error: ${page} does not show the examples as they are: run make docs`);
    if (state.stale.length > 0 || state.problems.length > 0) process.exit(1);
    return;
  }
  for (const page of state.stale) {
    writeFileSync(page, state.updated.get(page)!);
    console.log(`updated ${page}`);
  }
  if (state.problems.length > 0) process.exit(1);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
