/** Text rules shared by the value objects. */

const utf8 = new TextEncoder();

export const utf8Length = (text: string): number => utf8.encode(text).length;

/** Unicode category Cc: C0 and C1 controls, including NUL, BEL, LF and DEL. */
export const hasControlCharacter = (text: string): boolean => /\p{Cc}/u.test(text);

/** A string with a lone surrogate cannot be encoded as UTF-8. */
export const isValidUnicode = (text: string): boolean => text.isWellFormed();

export const codePointLength = (text: string): number => {
  let count = 0;
  for (const _ of text) count++;
  return count;
};
