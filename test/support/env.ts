import path from 'node:path';

// Test settings: the same local stack as `npm start`, but a database and a Temporal namespace of
// the tests' own, so a running dev worker never picks up a test workflow.
const testEnv: Record<string, string> = {
  NODE_ENV: 'test',
  LOG_LEVEL: 'silent',
  DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/operator_mgmt_test',
  TEMPORAL_NAMESPACE: 'operator-mgmt-test',
  JWT_SECRET: 'test-jwt-secret',
  INTERNAL_TLS: 'false',
};

for (const [key, value] of Object.entries(testEnv)) {
  process.env[key] ??= value;
}
process.env.TEMPORAL_WORKFLOW_BUNDLE ??= path.resolve(__dirname, '../../.stack/test/workflow-bundle.js');
