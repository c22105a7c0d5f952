#!/usr/bin/env node
// First step of `npm test`: fail early, with a message, when the tests would run on a Node
// that cannot run libp2p 3 (it needs Promise.withResolvers, Node >= 22).
const major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  process.stderr.write(
    `Rhizome needs Node >= 22, but npm scripts run ${process.execPath} (${process.version}).\n` +
      'Run `npm install` in the repository root: it installs the "node" devDependency that npm scripts use.\n',
  );
  process.exit(1);
}
