/**
 * Import rules for src/, checked by `npm run lint` (and so `npm test`); test/dependency-rules.test.ts
 * shows each rule failing on a fixture. README "Project layout" explains the layers.
 * @type {import('dependency-cruiser').IConfiguration}
 */
module.exports = {
  forbidden: [
    {
      name: 'no-cycle',
      severity: 'error',
      comment: 'An import cycle makes start-up order and the layers unreadable.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'db-and-events-below-api',
      severity: 'error',
      comment: 'SQL and events know nothing of HTTP: src/db and src/events never import src/api.',
      from: { path: '^src/(db|events)/' },
      to: { path: '^src/api/' },
    },
    {
      name: 'workflows-stay-deterministic',
      severity: 'error',
      comment:
        'Workflow code runs in a deterministic sandbox: it imports workflow code, src/domain and the Temporal workflow SDK; activities only as types.',
      from: { path: '^src/workflows/' },
      to: {
        dependencyTypesNot: ['type-only'],
        pathNot: ['^src/workflows/', '^src/domain/', '@temporalio/(workflow|common)'],
      },
    },
    {
      name: 'domain-stands-alone',
      severity: 'error',
      comment: 'Domain rules and shared types import nothing of the layers that use them.',
      from: { path: '^src/domain/' },
      to: { pathNot: ['^src/domain/', 'zod', '@temporalio/common'] },
    },
    {
      name: 'activities-below-api',
      severity: 'error',
      comment: 'Activities are built from injected clients: they never reach into the HTTP layer or the services.',
      from: { path: '^src/activities/' },
      to: { path: '^src/(api|services)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^(node_modules|dist)' },
  },
};
