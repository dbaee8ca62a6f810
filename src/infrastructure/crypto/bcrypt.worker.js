// Runs in a piscina worker thread. bcrypt's synchronous calls keep the work on this thread:
// its async calls would queue on libuv's shared pool, where WebCrypto and DNS wait behind them.
import bcrypt from 'bcrypt';

/** @param {{ password: string, cost: number }} task */
export function hash({ password, cost }) {
  return bcrypt.hashSync(password, cost);
}

/** @param {{ password: string, hash: string }} task */
export function compare({ password, hash }) {
  return bcrypt.compareSync(password, hash);
}
