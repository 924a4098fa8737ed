import { UsageError } from '../../../../core/errors.ts';
import { type Connection, queryRows } from '../../../mysql/connection.ts';
import { isPunct, isWord, type Token } from './sql-tokens.ts';

/**
 * The account a view, routine, trigger or event runs as (its DEFINER): kept on the destination when
 * the account exists there; else refused, or — when the operator asks — left out so the loading
 * user defines it.
 */
export interface Account {
  user: string;
  /** Undefined for a MariaDB role (`DEFINER=role`). */
  host: string | undefined;
}

export function describeAccount(account: Account): string {
  return account.host === undefined ? `'${account.user}'` : `'${account.user}'@'${account.host}'`;
}

function quotePart(part: string): string {
  return part.length === 0 ? "''" : `\`${part.replace(/`/g, '``')}\``;
}

/** `DEFINER=` text for `account`, quoted the same under any sql_mode. */
export function definerClause(account: Account): string {
  return `DEFINER=${quotePart(account.user)}${account.host === undefined ? '' : `@${quotePart(account.host)}`}`;
}

/**
 * Reads `DEFINER = user@host` (or a role, or CURRENT_USER) at `tokens[i]` (just after `DEFINER`).
 * Returns the account (undefined for CURRENT_USER: the loading user) and the index after it.
 */
export function readDefiner(
  text: string,
  tokens: readonly Token[],
  i: number,
  refuse: (reason: string) => never,
): { account: Account | undefined; next: number } {
  if (!isPunct(tokens[i], '=')) refuse('its DEFINER is malformed');
  i++;
  if (isWord(tokens[i], 'CURRENT_USER', 'CURRENT_ROLE')) {
    return {
      account: undefined,
      next: i + (isPunct(tokens[i + 1], '(') && isPunct(tokens[i + 2], ')') ? 3 : 1),
    };
  }
  const part = (token: Token | undefined): token is Token =>
    token !== undefined && (token.kind === 'word' || token.kind === 'identifier' || token.kind === 'string');
  const user = tokens[i];
  if (!part(user)) refuse('its DEFINER is malformed');
  const value = (token: Token) => (token.kind === 'word' ? text.slice(token.start, token.end) : token.value);
  if (!isPunct(tokens[i + 1], '@')) return { account: { user: value(user), host: undefined }, next: i + 1 };
  const host = tokens[i + 2];
  if (!part(host)) refuse('its DEFINER is malformed');
  // An unquoted host like `10.0.0.1` or `%.example.com` is several tokens: only quoted ones are taken.
  if (host.kind === 'word' && isPunct(tokens[i + 3], '.')) refuse('its DEFINER host must be quoted');
  return { account: { user: value(user), host: value(host) }, next: i + 3 };
}

/** The accounts (and roles) of `accounts` that do not exist on the destination server. */
export async function missingAccounts(
  connection: Connection,
  accounts: readonly Account[],
): Promise<Account[]> {
  const missing: Account[] = [];
  const seen = new Set<string>();
  for (const account of accounts) {
    const key = describeAccount(account);
    if (seen.has(key)) continue;
    seen.add(key);
    const rows = await queryRows(connection, 'SELECT 1 FROM mysql.user WHERE User = ? AND Host = ?', [
      account.user,
      account.host ?? '',
    ]);
    if (rows.length === 0) missing.push(account);
  }
  return missing;
}

/** Refuses definers that do not exist here, unless the request falls back to the loading user. */
export function refuseMissingDefiners(missing: readonly { object: string; account: Account }[]): void {
  if (missing.length === 0) return;
  const accounts = [...new Set(missing.map((m) => describeAccount(m.account)))];
  throw new UsageError(
    `the DEFINER ${accounts.length === 1 ? 'account' : 'accounts'} ${accounts.join(', ')} of ${missing
      .slice(0, 5)
      .map((m) => m.object)
      .join(
        ', ',
      )}${missing.length > 5 ? ', …' : ''} ${accounts.length === 1 ? 'does' : 'do'} not exist on this server`,
    {
      hint: 'create the accounts first (CREATE USER), or pass --definer-fallback to define these objects as the loading user',
    },
  );
}
