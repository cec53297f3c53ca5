-- AlterTable
ALTER TABLE "Generation" ADD COLUMN     "videoExpiredAt" TIMESTAMP(3);

-- CreateTable
CREATE TABLE "DeletedGeneration" (
    "id" TEXT NOT NULL,
    "apiKeyId" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL,
    "quality" "VideoQuality" NOT NULL,
    "duration" INTEGER NOT NULL,
    "billable" BOOLEAN NOT NULL,
    "deletedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "DeletedGeneration_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "DeletedGeneration_apiKeyId_createdAt_idx" ON "DeletedGeneration"("apiKeyId", "createdAt");

-- CreateIndex
CREATE INDEX "SourceUpload_createdAt_idx" ON "SourceUpload"("createdAt");

-- The retention sweep looks only at generations that still have a video.
CREATE INDEX "Generation_video_retention_idx" ON "Generation"("completedAt") WHERE "status" = 'SUCCEEDED' AND "videoExpiredAt" IS NULL;
