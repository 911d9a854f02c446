/**
 * Bad input from outside: a file, an argument, a request. Every layer throws this for input it refuses;
 * the CLI prints `error: <message>` and exits 2, the server answers 4xx. Anything else is an internal failure.
 */
export class InputError extends Error {
  override name = 'InputError';
}
