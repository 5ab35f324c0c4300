-- CreateTable
CREATE TABLE "instance_key" (
    "name" TEXT NOT NULL,
    "key" BYTEA NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "instance_key_pkey" PRIMARY KEY ("name")
);
