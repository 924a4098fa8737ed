export { freePort } from '../../local/ports.ts';
