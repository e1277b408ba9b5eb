/** ApplicationFailure types shared by activities, workflows and the API's error mapping. */
export const DUPLICATE_OPERATOR = 'DuplicateOperator';
export const NOT_FOUND = 'NotFound';
export const VAULT_REJECTED = 'VaultRejected';
export const CREDENTIALS_NOT_STAGED = 'CredentialsNotStaged';
export const ONBOARDING_FAILED = 'OnboardingFailed';
export const CONFLICT = 'Conflict';
export const EVENT_TOO_LARGE = 'EventTooLarge';
/** Well-formed input that cannot be applied; details[0] is `{ errors: [{ field, message }] }` (a 422). */
export const UNPROCESSABLE = 'Unprocessable';
