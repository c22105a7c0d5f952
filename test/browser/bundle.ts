// esbuild for pages: bundles an entry the way an app's bundler would (the `browser` condition,
// platform 'browser') and records every Node built-in that anything reachable tries to import.
import { builtinModules } from 'node:module';
import { gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';

const BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/** What {@link bundleForBrowser} built. */
export interface BrowserBundle {
  code: string;
  /** Node built-ins imported by anything reachable from the entry, with the importer: `'fs' from x.ts'`. */
  nodeBuiltins: string[];
  bytes: number;
  gzipBytes: number;
  metafile: esbuild.Metafile;
}

/** Options of {@link bundleForBrowser}. */
export interface BundleOptions {
  /** Packages left out of the bundle (e.g. `['yjs']` to measure Rhizome alone). */
  external?: string[];
  minify?: boolean;
  /** Resolve workspace packages to their TypeScript sources (default true). */
  sources?: boolean;
  /** Directory bare imports resolve from (default: the repository). */
  resolveDir?: string;
  sourcemap?: boolean;
}

/**
 * Bundles `entry` (a file path, or `{ contents }` of a module) for a page. Never fails on a
 * Node built-in: it reports them in `nodeBuiltins`, so a test can say which and where.
 */
export async function bundleForBrowser(entry: string | { contents: string }, options: BundleOptions = {}): Promise<BrowserBundle> {
  const nodeBuiltins: string[] = [];
  const result = await esbuild.build({
    ...(typeof entry === 'string'
      ? { entryPoints: [entry] }
      : { stdin: { contents: entry.contents, resolveDir: options.resolveDir ?? process.cwd(), loader: 'ts', sourcefile: 'entry.ts' } }),
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    conditions: options.sources === false ? [] : ['rhizome-source'],
    minify: options.minify ?? true,
    sourcemap: options.sourcemap ? 'inline' : false,
    metafile: true,
    logLevel: 'silent',
    external: options.external ?? [],
    plugins: [
      {
        name: 'report-node-builtins',
        setup(build) {
          build.onResolve({ filter: /.*/ }, (args) => {
            if (!BUILTINS.has(args.path)) return undefined;
            nodeBuiltins.push(`${args.path} from ${args.importer}`);
            return { path: args.path, external: true };
          });
        },
      },
    ],
  });
  const code = result.outputFiles[0]!.text;
  const raw = Buffer.from(code);
  return { code, nodeBuiltins, bytes: raw.length, gzipBytes: gzipSync(raw, { level: 9 }).length, metafile: result.metafile };
}
