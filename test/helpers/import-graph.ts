/**
 * The import graph of the agent's own sources (src/ and hooks/), read with the TypeScript compiler's parser:
 * every `import`/`export … from`, `import x = require()`, `import()` and `require()` whose specifier is a
 * string literal. Each edge says whether it exists at run time or only for the type checker, because the
 * two answer different questions: layering is about what a file may know of (both kinds), load order and
 * cycles only about what Node actually loads (runtime edges; type-only imports are erased by tsc).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

export interface ImportEdge {
  /** Repository-relative path of the importing file, with forward slashes (`hooks/pg.ts`). */
  readonly from: string;
  /** The specifier as written (`../src/hook-kit.js`, `node:fs`, `semver`). */
  readonly specifier: string;
  /** Repository-relative path of the imported source file; undefined for packages, builtins and non-TS files. */
  readonly to: string | undefined;
  /** Where the target lives: one of our source files, a Node builtin, an npm package, or another local file (JSON). */
  readonly target: 'source' | 'builtin' | 'package' | 'other';
  /** Erased by tsc: `import type`, `export type`, `import { type A }` with only type specifiers, `typeof import()`. */
  readonly typeOnly: boolean;
  /** `import()` or `require()`: loaded when the code runs, not when the file loads. */
  readonly dynamic: boolean;
  readonly line: number;
}

const BUILTINS = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));

/** Every .ts/.mts file below `dir` (repository-relative), sorted. */
export function sourceFiles(repo: string, dirs: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (/\.m?ts$/.test(entry.name) && !entry.name.endsWith('.d.ts')) out.push(toRepoPath(repo, full));
    }
  };
  for (const dir of dirs) walk(join(repo, dir));
  return out.sort();
}

function toRepoPath(repo: string, file: string): string {
  return relative(repo, file).split(sep).join('/');
}

/** The imports of one file's text. `file` is repository-relative; relative specifiers are resolved against it. */
export function importsOf(repo: string, file: string, text: string): ImportEdge[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, file.endsWith('.mts') ? ts.ScriptKind.TS : undefined);
  const edges: ImportEdge[] = [];
  const add = (specifier: string, node: ts.Node, typeOnly: boolean, dynamic: boolean): void => {
    const { to, target } = resolveSpecifier(repo, file, specifier);
    const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
    edges.push({ from: file, specifier, to, target, typeOnly, dynamic, line });
  };

  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      add(node.moduleSpecifier.text, node, isTypeOnlyImport(node), false);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      add(node.moduleSpecifier.text, node, isTypeOnlyExport(node), false);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      const expression = node.moduleReference.expression;
      if (ts.isStringLiteral(expression)) add(expression.text, node, node.isTypeOnly, false);
    } else if (ts.isImportTypeNode(node)) {
      const argument = node.argument;
      if (ts.isLiteralTypeNode(argument) && ts.isStringLiteral(argument.literal)) add(argument.literal.text, node, true, false);
    } else if (ts.isCallExpression(node) && node.arguments.length >= 1) {
      const [first] = node.arguments;
      const isImportCall = node.expression.kind === ts.SyntaxKind.ImportKeyword;
      const isRequireCall = ts.isIdentifier(node.expression) && node.expression.text === 'require';
      if ((isImportCall || isRequireCall) && first && ts.isStringLiteralLike(first)) add(first.text, node, false, true);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return edges;
}

/** `import type …`, or named imports that are all `type` (tsc then drops the whole statement). */
function isTypeOnlyImport(node: ts.ImportDeclaration): boolean {
  const clause = node.importClause;
  if (!clause) return false; // `import './x.js'` runs the file
  if (clause.isTypeOnly) return true;
  if (clause.name) return false;
  const bindings = clause.namedBindings;
  return !!bindings && ts.isNamedImports(bindings) && bindings.elements.length > 0 && bindings.elements.every((e) => e.isTypeOnly);
}

function isTypeOnlyExport(node: ts.ExportDeclaration): boolean {
  if (node.isTypeOnly) return true;
  const clause = node.exportClause;
  return !!clause && ts.isNamedExports(clause) && clause.elements.length > 0 && clause.elements.every((e) => e.isTypeOnly);
}

function resolveSpecifier(repo: string, file: string, specifier: string): Pick<ImportEdge, 'to' | 'target'> {
  if (!specifier.startsWith('.')) {
    return { to: undefined, target: BUILTINS.has(specifier) || specifier.startsWith('node:') ? 'builtin' : 'package' };
  }
  const base = resolve(repo, dirname(file), specifier);
  // NodeNext specifiers name the emitted file (`./x.js`); the source is `./x.ts` (`.mjs` → `.mts`).
  const candidates = [base.replace(/\.js$/, '.ts'), base.replace(/\.mjs$/, '.mts'), `${base}.ts`, join(base, 'index.ts')];
  const found = candidates.find((candidate) => /\.m?ts$/.test(candidate) && existsSync(candidate));
  return found ? { to: toRepoPath(repo, found), target: 'source' } : { to: undefined, target: 'other' };
}

/** The import graph of every source file below `dirs`. */
export function importGraph(repo: string, dirs: readonly string[]): { files: string[]; edges: ImportEdge[] } {
  const files = sourceFiles(repo, dirs);
  const edges = files.flatMap((file) => importsOf(repo, file, readFileSync(join(repo, file), 'utf8')));
  return { files, edges };
}

/**
 * Strongly connected components with more than one file (or a file importing itself): every import cycle,
 * each listed once. Tarjan's algorithm, recursive: the graph has well under a thousand files.
 */
export function cycles(files: readonly string[], edges: readonly ImportEdge[]): string[][] {
  const next = new Map<string, Set<string>>(files.map((f) => [f, new Set<string>()]));
  for (const edge of edges) if (edge.to) next.get(edge.from)?.add(edge.to);
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];

  const connect = (file: string): void => {
    index.set(file, counter);
    low.set(file, counter);
    counter++;
    stack.push(file);
    onStack.add(file);
    for (const target of next.get(file) ?? []) {
      if (!index.has(target)) {
        connect(target);
        low.set(file, Math.min(low.get(file)!, low.get(target)!));
      } else if (onStack.has(target)) {
        low.set(file, Math.min(low.get(file)!, index.get(target)!));
      }
    }
    if (low.get(file) === index.get(file)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== file);
      if (component.length > 1 || next.get(file)?.has(file)) found.push(component.sort());
    }
  };
  for (const file of files) if (!index.has(file)) connect(file);
  return found;
}
