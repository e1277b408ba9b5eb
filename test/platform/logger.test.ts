import { Writable } from 'node:stream';
import { createLogger } from '../../src/platform/logger';
import { requestContext } from '../../src/platform/request-context';
import { expectNoSecret } from '../support/secrets';

/** The logger's redaction, inside thrown client errors too, and the request id on every line. */

function capture() {
  const lines: string[] = [];
  const log = createLogger(
    'info',
    'test',
    new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    }),
  );
  return { log, text: () => lines.join('') };
}

describe('logger', () => {
  it('censors a password, a token and an Authorization header deep inside a thrown client error', () => {
    const password = 'Sx9q2Lm7';
    const token = 'hvs.canary-token-1234';
    // The shape of an HTTP client's error: the request it sent, with body and headers, nested deep.
    const err = Object.assign(new Error('Request failed with status 500'), {
      statusCode: 500,
      response: {
        request: {
          options: { headers: { Authorization: `Bearer ${token}`, 'X-Vault-Token': token } },
          body: { data: { credentials: { password } } },
        },
      },
    });
    const { log, text } = capture();
    log.error({ err }, 'vault write failed');
    log.warn({ error: err, deep: { a: { b: { password } } } }, 'again');
    expectNoSecret(text(), password, 'the log');
    expectNoSecret(text(), token, 'the log');
    expect(text()).toContain('Request failed with status 500');
    expect(text()).toContain('"statusCode":500');
    expect(text()).toContain('[redacted]');
  });

  it('scrubs secret-named keys of any logged object at any depth, errors under other keys too', () => {
    const password = 'Qw3rt7zX';
    const token = 'canary-task-token-987';
    const { log, text } = capture();
    log.info(
      {
        request: { headers: { Authorization: `Bearer ${token}` } },
        a: { b: { c: { d: { e: { password } } } } },
        cause: Object.assign(new Error('nested'), { config: { newPassword: password, taskToken: token } }),
      },
      'deep',
    );
    // A flat line too, the kind that is written as it is when no key is secret-named.
    log.info({ caller: 'smpp-connector', apiToken: token, ms: 3 }, 'flat');
    expectNoSecret(text(), password, 'the log');
    expectNoSecret(text(), token, 'the log');
    expect(text()).toContain('nested');
  });

  it('scrubs values interpolated into a message and bindings set later', () => {
    const password = 'Hy6tR4ew';
    const { log, text } = capture();
    log.info('sent %j', { credentials: { password } });
    log.warn({ step: 1 }, 'again %o', { apiToken: password });
    const child = log.child({ component: 'x' });
    child.setBindings({ token: password });
    child.info('bound later');
    expectNoSecret(text(), password, 'the log');
    expect(text()).toContain('bound later');
  });

  it("scrubs a child logger's bindings too", () => {
    const password = 'Zu8vK2pq';
    const { log, text } = capture();
    log.child({ component: 'vault', auth: { password } }).child({ token: password }).info('bound');
    expectNoSecret(text(), password, 'the log');
    expect(JSON.parse(text()) as { component?: string }).toMatchObject({ component: 'vault' });
  });

  it('adds the request id to every line written inside a request', () => {
    const { log, text } = capture();
    requestContext.run({ requestId: 'req-42' }, () => log.info('inside'));
    log.info('outside');
    const [inside, outside] = text()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { requestId?: string });
    expect(inside?.requestId).toBe('req-42');
    expect(outside?.requestId).toBeUndefined();
  });
});
