import {
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

const ROOT = resolve(import.meta.dirname, '../..');

/**
 * Emits src/ as JavaScript into `outDir` file by file (ts.transpileModule,
 * no type check: a second or two instead of a full tsc run), for tests that
 * start real server processes: `node <outDir>/src/main.js`.
 */
export function transpileServer(outDir: string): string {
  const { config } = ts.readConfigFile(join(ROOT, 'tsconfig.json'), (f) =>
    ts.sys.readFile(f),
  );
  const { options } = ts.convertCompilerOptionsFromJson(
    config.compilerOptions,
    ROOT,
  );
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
    );
  for (const file of walk(join(ROOT, 'src'))) {
    if (!file.endsWith('.ts') || file.endsWith('.spec.ts')) continue;
    const out = join(outDir, relative(ROOT, file)).replace(/\.ts$/, '.js');
    const { outputText } = ts.transpileModule(readFileSync(file, 'utf8'), {
      // Every file is ESM ("type": "module"): transpileModule cannot look that up itself.
      compilerOptions: {
        ...options,
        module: ts.ModuleKind.ESNext,
        sourceMap: false,
        declaration: false,
      },
      fileName: file,
    });
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, outputText);
  }
  writeFileSync(join(outDir, 'package.json'), '{ "type": "module" }\n');
  symlinkSync(join(ROOT, 'node_modules'), join(outDir, 'node_modules'), 'dir');
  return join(outDir, 'src/main.js');
}
