-- AlterTable
-- Keys made before webhooks existed get a random secret of their own.
ALTER TABLE "ApiKey" ADD COLUMN     "webhookSecret" TEXT NOT NULL DEFAULT ('whsec_' || encode(sha256(convert_to(gen_random_uuid()::text || clock_timestamp()::text, 'UTF8')), 'hex'));
ALTER TABLE "ApiKey" ALTER COLUMN "webhookSecret" DROP DEFAULT;

-- AlterTable
ALTER TABLE "Generation" ADD COLUMN     "callbackUrl" TEXT,
ADD COLUMN     "sourceUploadId" TEXT,
ADD COLUMN     "webhookScheduledAt" TIMESTAMP(3);

-- CreateTable
CREATE TABLE "SourceUpload" (
    "id" TEXT NOT NULL,
    "apiKeyId" TEXT NOT NULL,
    "storageKey" TEXT NOT NULL,
    "contentType" TEXT NOT NULL,
    "byteSize" INTEGER NOT NULL,
    "width" INTEGER NOT NULL,
    "height" INTEGER NOT NULL,
    "durationSeconds" DOUBLE PRECISION NOT NULL,
    "sha256" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "SourceUpload_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "WebhookAttempt" (
    "id" TEXT NOT NULL,
    "generationId" TEXT NOT NULL,
    "attempt" INTEGER NOT NULL,
    "event" TEXT NOT NULL,
    "url" TEXT NOT NULL,
    "statusCode" INTEGER,
    "error" TEXT,
    "durationMs" INTEGER NOT NULL,
    "succeeded" BOOLEAN NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "WebhookAttempt_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "WebhookAttempt_generationId_attempt_key" ON "WebhookAttempt"("generationId", "attempt");

-- AddForeignKey
ALTER TABLE "Generation" ADD CONSTRAINT "Generation_sourceUploadId_fkey" FOREIGN KEY ("sourceUploadId") REFERENCES "SourceUpload"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "SourceUpload" ADD CONSTRAINT "SourceUpload_apiKeyId_fkey" FOREIGN KEY ("apiKeyId") REFERENCES "ApiKey"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "WebhookAttempt" ADD CONSTRAINT "WebhookAttempt_generationId_fkey" FOREIGN KEY ("generationId") REFERENCES "Generation"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- The webhook sweep looks only at ended generations whose delivery was never scheduled.
CREATE INDEX "Generation_webhook_unscheduled_idx" ON "Generation"("completedAt") WHERE "callbackUrl" IS NOT NULL AND "webhookScheduledAt" IS NULL;
