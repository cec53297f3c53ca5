import { PrismaPg } from '@prisma/adapter-pg';

type Adapter = Awaited<ReturnType<PrismaPg['connect']>>;
type Transaction = Awaited<ReturnType<Adapter['startTransaction']>>;

/**
 * PrismaPg whose transactions always give their connection back to the pool.
 *
 * Prisma ends a transaction by sending COMMIT or ROLLBACK and only then asks the adapter to
 * release the connection; when that statement fails, as it does on a connection that broke in the
 * middle of the transaction (PostgreSQL restarted), the release never comes and the connection
 * stays checked out for good. Enough of them and every checkout times out, long after PostgreSQL
 * is back. Here a failed COMMIT or ROLLBACK releases the connection itself; the pool drops one that
 * can no longer be used instead of handing it out again.
 */
export class ReleasingPrismaPg extends PrismaPg {
  override async connect(): Promise<Adapter> {
    const adapter = await super.connect();
    const startTransaction = adapter.startTransaction.bind(adapter);
    adapter.startTransaction = async (isolationLevel) => releaseOnFailedEnd(await startTransaction(isolationLevel));
    return adapter;
  }
}

function releaseOnFailedEnd(transaction: Transaction): Transaction {
  const executeRaw = transaction.executeRaw.bind(transaction);
  transaction.executeRaw = async (query) => {
    try {
      return await executeRaw(query);
    } catch (error) {
      // Prisma calls rollback() (the release) only after these succeed, so this is the one release.
      if (query.sql === 'COMMIT' || query.sql === 'ROLLBACK') await transaction.rollback();
      throw error;
    }
  };
  return transaction;
}
