// ESLint flat config: typescript-eslint with type information, formatting left to Prettier.
//
// Why `typescript` in package.json is `npm:@typescript/typescript6`: the compiler is TypeScript 7
// (the Go-native one, installed as `@typescript/native` = `npm:typescript@^7`, which owns the
// `tsc` binary that `npm run typecheck`/`build` use). TypeScript 7.0 ships no JavaScript compiler
// API, and typescript-eslint's type-aware rules need one: it does `require('typescript')` and
// supports `typescript >=4.8.4 <6.1.0` (https://typescript-eslint.io/users/dependency-versions,
// typescript-eslint#10940). Microsoft's documented transition setup ("Running side-by-side with
// TypeScript 6.0" in the TypeScript 7.0 announcement) is exactly this pair of aliases: the package
// named `typescript` is the TS 6 API package (its binary is `tsc6`, so it never shadows `tsc`).
// Remove the aliases once typescript-eslint supports TypeScript 7's API.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier/flat';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  // Generated files are checked by their drift tests, not linted (the validator is Ajv's output).
  { ignores: ['node_modules/', 'dist/', 'coverage/', '.tmp/', 'bench/results/', 'src/chain/fallbackchain.validator.ts', 'src/chain/spec.generated.ts'] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        // One TypeScript program from tsconfig.json (src, test, bench, scripts), as `tsc` sees it.
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // The rules the project asked for by name (issue 17): promises nobody awaits or catches, and
      // promises handed to callbacks that ignore them (express handlers, event emitters).
      // node:test's describe/it/test return promises the runner itself tracks; awaiting them is noise.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            {
              from: 'package',
              package: 'node:test',
              name: ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'],
            },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      // A switch over a union (FailureClass, wire formats, step kinds) must name every member or
      // not hide missing ones behind `default:` — the check tsc cannot do for `a === 'x' || a === 'y'`
      // chains, which is why decisions over FailureClass are switches (src/core/failure.ts).
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: false, requireDefaultForNonUnion: false }],
      '@typescript-eslint/no-explicit-any': 'error',
      // `_`-prefixed names are the codebase's way to say "unused on purpose" (interface-shaped
      // parameters, destructuring to drop a field).
      // Off on purpose: `async` without `await` is how this codebase implements Promise-returning
      // interfaces (ConfigSource.start/reload, AttemptFn, test doubles) so that a throw becomes a
      // rejection rather than a synchronous exception the caller does not expect.
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
    },
  },
  {
    // Tests and their doubles read bodies they have just asserted the shape of (SDK errors,
    // `JSON.parse` of a reply, a stream's chunks): re-proving each field's type there is noise, and
    // an `[object Object]` in a failing assertion's message is harmless. `any` stays an error.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-base-to-string': 'off',
      // A fake upstream answers the cases a test scripts and one `default:` for the rest.
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
    },
  },
  {
    // This file itself is plain JavaScript outside tsconfig.json: lint it without type information.
    files: ['**/*.js'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  // Last: turn off every stylistic rule Prettier owns.
  prettier,
);
