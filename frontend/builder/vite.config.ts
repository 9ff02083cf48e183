import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const here = fileURLToPath(new URL('.', import.meta.url));

// One classic script and one stylesheet with stable names: the page loads them with `defer`,
// and Django's ManifestStaticFilesStorage adds the content hashes at collectstatic.
export default defineConfig({
  esbuild: { jsx: 'automatic' },
  define: { 'process.env.NODE_ENV': JSON.stringify('production') },
  build: {
    outDir: resolve(here, '../../static/builder'),
    emptyOutDir: true,
    minify: true,
    sourcemap: false,
    cssCodeSplit: false,
    reportCompressedSize: false,
    lib: {
      entry: resolve(here, 'src/element.tsx'),
      name: 'WorkflowBuilder',
      formats: ['iife'],
      fileName: () => 'workflow-builder.js',
      cssFileName: 'workflow-builder',
    },
    rollupOptions: {
      output: { assetFileNames: 'workflow-builder[extname]' },
    },
  },
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
  },
});
