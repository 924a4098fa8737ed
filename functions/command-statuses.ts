/** Command invocation statuses that end a command without the agent having run to its end. */
export const FAILED_COMMAND_STATUSES = [
  'Failed',
  'TimedOut',
  'Cancelled',
  'Undeliverable',
  'Terminated',
  'DeliveryTimedOut',
  'ExecutionTimedOut',
] as const;

/** The EventBridge detail-type of a command invocation's status change (source aws.ssm). */
export const COMMAND_INVOCATION_STATUS_CHANGE = 'EC2 Command Invocation Status-change Notification';
