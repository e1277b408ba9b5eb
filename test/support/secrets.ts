/**
 * Fails when a secret appears in a text, without printing either: jest's own `not.toContain`
 * message would show the secret it was asked to keep out of sight (test output included).
 */
export function expectNoSecret(text: string, secret: string, where = 'the checked text'): void {
  if (!secret) throw new Error('expectNoSecret needs a non-empty secret');
  if (text.includes(secret)) throw new Error(`a secret (${secret.length} characters) appeared in ${where}`);
}
