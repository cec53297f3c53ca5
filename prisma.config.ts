import { defineConfig } from 'prisma/config';

// Prisma 6 with the JS engine and the pg driver adapter: no native engine is downloaded.
export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  schema: 'prisma/schema.prisma',
  async adapter() {
    const { PrismaPg } = await import('@prisma/adapter-pg');
    return new PrismaPg({ connectionString: process.env.DATABASE_URL });
  },
});
