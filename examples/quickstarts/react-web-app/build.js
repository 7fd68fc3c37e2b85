// `npm run build`: bundles src/ with esbuild into build/bundle.js (minified, production React)
// and writes build/index.html from public/index.html, stamped with the bundle's size.
'use strict';

const fs = require('fs');
const path = require('path');
const esbuild = require('esbuild');

const out = path.join(__dirname, 'build');
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });

esbuild.buildSync({
  entryPoints: [path.join(__dirname, 'src', 'index.jsx')],
  bundle: true,
  minify: true,
  outfile: path.join(out, 'bundle.js'),
  define: { 'process.env.NODE_ENV': '"production"' },
  target: ['es2018'],
  logLevel: 'info',
});

const size = fs.statSync(path.join(out, 'bundle.js')).size;
const html = fs
  .readFileSync(path.join(__dirname, 'public', 'index.html'), 'utf8')
  .replace('%BUILD_INFO%', `bundle.js: ${size} bytes, built by esbuild ${esbuild.version}`);
fs.writeFileSync(path.join(out, 'index.html'), html);
console.log(`built build/index.html and build/bundle.js (${size} bytes)`);
