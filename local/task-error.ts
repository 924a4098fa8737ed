/** An error Step Functions would see: `name` is the Error a Catch matches, `message` the Cause. */
export function taskError(name: string, cause: string): Error {
  const error = new Error(cause);
  error.name = name;
  return error;
}
