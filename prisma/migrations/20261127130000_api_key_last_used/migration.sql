-- AlterTable
-- When a request last presented the key (npm run apikey:list); null for keys never used since.
ALTER TABLE "ApiKey" ADD COLUMN     "lastUsedAt" TIMESTAMP(3);
