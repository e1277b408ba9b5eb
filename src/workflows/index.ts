export { onboardOperator } from './onboarding';
