-- AlterTable
-- Why a RUNNING generation is waiting (a transient failure being retried) and until when.
ALTER TABLE "Generation" ADD COLUMN     "retryAt" TIMESTAMP(3),
ADD COLUMN     "retryCode" TEXT,
ADD COLUMN     "retryMessage" TEXT;
