
-- CreateEnum
CREATE TYPE "GenerationStatus" AS ENUM ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELED');

-- CreateEnum
CREATE TYPE "VideoQuality" AS ENUM ('Q360P', 'Q540P', 'Q720P', 'Q1080P');

-- CreateEnum
CREATE TYPE "MotionMode" AS ENUM ('NORMAL', 'FAST');

-- CreateEnum
CREATE TYPE "VideoStyle" AS ENUM ('ANIME', 'THREE_D_ANIMATION', 'CLAY', 'COMIC', 'CYBERPUNK');

-- CreateTable
CREATE TABLE "ApiKey" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "prefix" TEXT NOT NULL,
    "keyHash" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "revokedAt" TIMESTAMP(3),

    CONSTRAINT "ApiKey_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Generation" (
    "id" TEXT NOT NULL,
    "apiKeyId" TEXT NOT NULL,
    "status" "GenerationStatus" NOT NULL DEFAULT 'QUEUED',
    "prompt" TEXT NOT NULL,
    "negativePrompt" TEXT,
    "duration" INTEGER NOT NULL,
    "quality" "VideoQuality" NOT NULL,
    "motionMode" "MotionMode" NOT NULL,
    "seed" INTEGER,
    "style" "VideoStyle",
    "sourceVideoUrl" TEXT NOT NULL,
    "sourceId" TEXT,
    "idempotencyKey" TEXT,
    "paramsHash" TEXT NOT NULL,
    "plannedVideoId" TEXT NOT NULL,
    "submitStartedAt" TIMESTAMP(3),
    "upstreamRequestId" TEXT,
    "upstreamStatus" TEXT,
    "pollCount" INTEGER NOT NULL DEFAULT 0,
    "retryCount" INTEGER NOT NULL DEFAULT 0,
    "errorCode" TEXT,
    "errorMessage" TEXT,
    "errorUpstreamStatus" INTEGER,
    "cost" DECIMAL(12,6),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    "startedAt" TIMESTAMP(3),
    "completedAt" TIMESTAMP(3),

    CONSTRAINT "Generation_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Video" (
    "id" TEXT NOT NULL,
    "generationId" TEXT NOT NULL,
    "storageKey" TEXT NOT NULL,
    "contentType" TEXT NOT NULL,
    "byteSize" INTEGER NOT NULL,
    "width" INTEGER NOT NULL,
    "height" INTEGER NOT NULL,
    "durationSeconds" DOUBLE PRECISION NOT NULL,
    "sha256" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Video_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "ApiKey_keyHash_key" ON "ApiKey"("keyHash");

-- CreateIndex
CREATE UNIQUE INDEX "Generation_plannedVideoId_key" ON "Generation"("plannedVideoId");

-- CreateIndex
CREATE UNIQUE INDEX "Generation_upstreamRequestId_key" ON "Generation"("upstreamRequestId");

-- CreateIndex
CREATE INDEX "Generation_apiKeyId_id_idx" ON "Generation"("apiKeyId", "id");

-- CreateIndex
CREATE INDEX "Generation_apiKeyId_createdAt_idx" ON "Generation"("apiKeyId", "createdAt");

-- CreateIndex
CREATE INDEX "Generation_apiKeyId_status_idx" ON "Generation"("apiKeyId", "status");

-- CreateIndex
CREATE INDEX "Generation_sourceId_idx" ON "Generation"("sourceId");

-- CreateIndex
CREATE UNIQUE INDEX "Generation_apiKeyId_idempotencyKey_key" ON "Generation"("apiKeyId", "idempotencyKey");

-- CreateIndex
CREATE UNIQUE INDEX "Video_generationId_key" ON "Video"("generationId");

-- AddForeignKey
ALTER TABLE "Generation" ADD CONSTRAINT "Generation_apiKeyId_fkey" FOREIGN KEY ("apiKeyId") REFERENCES "ApiKey"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Generation" ADD CONSTRAINT "Generation_sourceId_fkey" FOREIGN KEY ("sourceId") REFERENCES "Generation"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Video" ADD CONSTRAINT "Video_generationId_fkey" FOREIGN KEY ("generationId") REFERENCES "Generation"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

