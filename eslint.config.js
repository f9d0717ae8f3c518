import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** A layer of src/ may not import these folders of src/ nor these packages. */
function layer(files, folders, packages) {
  return [
    {
      files: [files],
      rules: {
        'no-restricted-imports': [
          'error',
          {
            paths: packages.map((name) => ({ name, message: `${files} must not depend on ${name}.` })),
            patterns: folders.map((folder) => ({
              group: [`**/${folder}/**`],
              message: `${files} must not import src/${folder}/: imports only go down (routes → services → queries → database).`,
            })),
          },
        ],
      },
    },
  ];
}

export default tseslint.config(
  { ignores: ['generated/', 'node_modules/', '.data/', '**/dist/', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', ignoreRestSiblings: true }],
      'no-restricted-properties': [
        'error',
        { object: 'it', property: 'only', message: 'Do not commit focused tests.' },
        { object: 'describe', property: 'only', message: 'Do not commit focused tests.' },
      ],
    },
  },
  // Imports only go down: routes → services → queries → database (see README, Layout).
  ...layer('src/routes/**', ['queries', 'database', 'analytics'], ['pg', 'kysely']),
  ...layer('src/services/**', ['routes', 'http'], ['express']),
  ...layer('src/queries/**', ['routes', 'http', 'responses', 'services'], ['express']),
  ...layer('src/analytics/**', ['routes', 'http', 'responses', 'services', 'queries'], ['express']),
  ...layer(
    'src/responses/**',
    ['routes', 'http', 'services', 'queries', 'analytics'],
    ['express', 'pg', 'kysely'],
  ),
  ...layer(
    'src/database/**',
    ['routes', 'http', 'responses', 'services', 'queries', 'analytics'],
    ['express'],
  ),
  ...layer(
    'src/auth/**',
    ['routes', 'http', 'responses', 'services', 'queries', 'analytics', 'database'],
    ['express', 'pg', 'kysely'],
  ),
  {
    // Migrations are frozen in time: they see the database as Kysely<any>, never src/ types.
    files: ['db/migrations/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // The dashboard is plain browser JavaScript, outside the TypeScript project (no DOM lib, no
    // allowJs there): lint it with browser globals and without the rules that need type information.
    files: ['src/dashboard/**/*.js'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: globals.browser },
  },
  {
    // The docs' example programs are plain Node JavaScript that readers copy: lint them with Node
    // globals and without the rules that need type information (they are outside the TS project).
    files: ['docs/examples/**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: globals.node },
  },
  {
    // Matchers such as expect.any() are typed any by design.
    files: ['test/**'],
    rules: { '@typescript-eslint/no-unsafe-assignment': 'off' },
  },
);
