-- Every secret a rotation replaced, not only the latest, keeps signing for its 24 hours.

-- CreateTable
CREATE TABLE "retired_webhook_secret" (
    "id" UUID NOT NULL,
    "tenant_id" UUID NOT NULL,
    "secret" TEXT NOT NULL,
    "signs_until" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "retired_webhook_secret_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "retired_webhook_secret_tenant_id_signs_until_idx" ON "retired_webhook_secret"("tenant_id", "signs_until");

-- AddForeignKey
ALTER TABLE "retired_webhook_secret" ADD CONSTRAINT "retired_webhook_secret_tenant_id_fkey" FOREIGN KEY ("tenant_id") REFERENCES "tenant"("id") ON DELETE CASCADE ON UPDATE CASCADE;


-- The previous secret of a rotation still inside its window keeps signing.
INSERT INTO "retired_webhook_secret" ("id", "tenant_id", "secret", "signs_until")
SELECT gen_random_uuid(), "id", "previous_webhook_secret", "previous_webhook_secret_expires_at"
FROM "tenant"
WHERE "previous_webhook_secret" IS NOT NULL AND "previous_webhook_secret_expires_at" > now();
