/** Why a rule of a listing could not be read, shared by the ebtables and iptables readers (which catch it). */
export class RuleError {
  constructor(
    readonly message: string,
    /** The construct is valid but not modelled (reported as unsupported), rather than bad input. */
    readonly isUnsupported: boolean,
  ) {}
}

/** Bad input: throws a RuleError. */
export function bad(message: string): never {
  throw new RuleError(message, false);
}

/** Valid but not modelled: throws an unsupported RuleError. */
export function notModelled(message: string): never {
  throw new RuleError(message, true);
}
