export { onboardOperator } from './onboarding';
export { drainOperator } from './drain';
export { rotateCredentials } from './rotation';
