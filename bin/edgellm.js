#!/usr/bin/env node
// Thin launcher so `npx edgellm` works from the built CLI bundle.
import('../dist/cli.js').catch((error) => {
  if (error && error.code === 'ERR_MODULE_NOT_FOUND' && String(error.message).includes('dist/cli.js')) {
    console.error('edgellm: the CLI is not built yet. Run `npm install` (or `npm run build`) first.');
    process.exit(1);
  }
  throw error;
});
