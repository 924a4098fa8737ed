import { Command, type Option } from 'commander';

/**
 * The CLI's Command: a flag the command does not know is reported before a required flag that is
 * missing. Commander checks required flags first, so a typo in one (`--defaults-fle`) was reported
 * only as `--defaults-file` not specified; the typo is the error worth naming, with its suggestion.
 */
export class StepbackCommand extends Command {
  override createCommand(name?: string): StepbackCommand {
    return new StepbackCommand(name);
  }

  /** Commander calls this for the first required flag that has no value. */
  missingMandatoryOptionValue(option: Option): void {
    const unknown = this.args.find((arg) => /^--?[^-]/.test(arg));
    const self = this as unknown as {
      unknownOption(flag: string): void;
    };
    if (unknown !== undefined) self.unknownOption(unknown.replace(/=.*/, ''));
    const parent = Command.prototype as unknown as {
      missingMandatoryOptionValue(this: Command, option: Option): void;
    };
    parent.missingMandatoryOptionValue.call(this, option);
  }
}
