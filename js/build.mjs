// Bundle the widget into one self-contained ESM file (+ CSS) for anywidget.
import * as esbuild from "esbuild";

await esbuild.build({
  entryPoints: ["src/widget.tsx"],
  bundle: true,
  format: "esm",
  minify: true,
  target: ["es2020"],
  jsx: "automatic",
  define: { "process.env.NODE_ENV": '"production"' },
  outdir: "../src/fm_lab/static",
  logLevel: "info",
});
