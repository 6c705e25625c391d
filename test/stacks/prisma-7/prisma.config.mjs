// Generation reads only the schema; the URL is never used by `prisma generate` (the app passes its own adapter).
export default { schema: 'prisma/schema.prisma', datasource: { url: process.env.SG_PG_URL ?? 'postgres://localhost/unused' } };
