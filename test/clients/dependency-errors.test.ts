import { NamespaceNotFoundError } from '@temporalio/common';
import { DatabaseError } from 'pg';
import { dependencyFailure, tagPostgresError } from '../../src/clients/dependency-errors';
import { VaultError } from '../../src/clients/vault';
import { conflict } from '../../src/services/shared/errors';

/** Which errors name a dependency that is down (503), and which are not outages at all. */

describe('dependencyFailure', () => {
  const pgError = (code: string) => Object.assign(new DatabaseError('failed', 0, 'error'), { code });

  it('names PostgreSQL for timeouts and lost connections, not for a refused statement', () => {
    expect(dependencyFailure(pgError('55P03'))).toMatchObject({ dependency: 'PostgreSQL', retryAfterS: 1 });
    expect(dependencyFailure(pgError('40001'))).toMatchObject({ dependency: 'PostgreSQL', retryAfterS: 1 });
    expect(dependencyFailure(pgError('57014'))).toMatchObject({ dependency: 'PostgreSQL' });
    expect(dependencyFailure(pgError('08006'))).toMatchObject({ dependency: 'PostgreSQL' });
    expect(dependencyFailure(pgError('25006'))).toMatchObject({ dependency: 'PostgreSQL' }); // a read-only standby
    expect(dependencyFailure(pgError('58030'))).toMatchObject({ dependency: 'PostgreSQL' });
    expect(dependencyFailure(pgError('XX000'))).toMatchObject({ dependency: 'PostgreSQL' });
    expect(dependencyFailure(pgError('23505'))).toBeUndefined();
    expect(dependencyFailure(pgError('25P02'))).toBeUndefined();
    expect(dependencyFailure(new Error('timeout exceeded when trying to connect'))).toMatchObject({
      dependency: 'PostgreSQL',
    });
    const refused = tagPostgresError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    expect(dependencyFailure(refused)).toMatchObject({ dependency: 'PostgreSQL' });
  });

  it('names Redis and NATS by their clients’ errors', () => {
    expect(dependencyFailure(Object.assign(new Error('x'), { name: 'MaxRetriesPerRequestError' }))).toMatchObject({
      dependency: 'Redis',
    });
    expect(dependencyFailure(Object.assign(new Error('x'), { name: 'NatsError' }))).toMatchObject({
      dependency: 'NATS',
    });
  });

  it('names Redis for its replies that it cannot serve now and for commands cut off, not for a wrong command', () => {
    const reply = (message: string) => Object.assign(new Error(message), { name: 'ReplyError' });
    for (const message of [
      'LOADING Redis is loading the dataset in memory',
      'BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.',
      "READONLY You can't write against a read only replica.",
      "OOM command not allowed when used memory > 'maxmemory'.",
      'MISCONF Redis is configured to save RDB snapshots, but it is currently not able to persist on disk.',
      'MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no.',
    ]) {
      expect(dependencyFailure(reply(message))).toMatchObject({ dependency: 'Redis' });
    }
    const aborted = Object.assign(new Error('Command aborted due to connection close'), { name: 'AbortError' });
    expect(dependencyFailure(aborted)).toMatchObject({ dependency: 'Redis' });
    expect(dependencyFailure(new Error('Command timed out'))).toMatchObject({ dependency: 'Redis' });
    expect(dependencyFailure(reply('ERR Error running script (call to f_0123): @user_script:1: oops'))).toBeUndefined();
    expect(
      dependencyFailure(reply('WRONGTYPE Operation against a key holding the wrong kind of value')),
    ).toBeUndefined();
  });

  it('names Temporal for a namespace it does not know', () => {
    expect(dependencyFailure(new NamespaceNotFoundError('operator-mgmt'))).toMatchObject({ dependency: 'Temporal' });
  });

  it('names Vault when it cannot be reached, is sealed or failing, or limits the rate; not for a refusal', () => {
    expect(dependencyFailure(new VaultError('write failed: connect ECONNREFUSED'))).toMatchObject({
      dependency: 'Vault',
    });
    expect(dependencyFailure(new VaultError('sealed', 503))).toMatchObject({ dependency: 'Vault' });
    expect(dependencyFailure(new VaultError('slow down', 429))).toMatchObject({ dependency: 'Vault' });
    expect(dependencyFailure(new VaultError('permission denied', 403))).toBeUndefined();
  });

  it('leaves the service’s own refusals and plain errors alone', () => {
    expect(dependencyFailure(conflict('no'))).toBeUndefined();
    expect(dependencyFailure(new Error('boom'))).toBeUndefined();
    expect(dependencyFailure('a string')).toBeUndefined();
  });
});
