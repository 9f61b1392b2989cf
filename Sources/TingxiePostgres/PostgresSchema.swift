import Logging
import PostgresNIO

/// The job store's tables, as numbered migrations. A node applies the ones the database lacks,
/// each in its own transaction, while it holds an advisory lock: nodes starting together
/// migrate once, one after another, and a node that dies mid-way leaves no half of a migration.
enum PostgresSchema {
    /// `pg_advisory_lock` key of the migrations ("tingxim" in ASCII).
    static let lock: Int64 = 0x7469_6e67_7869_6d

    /// Each version's statements, in order (one statement each: the extended protocol runs one
    /// at a time). Published versions never change; later ones are added at the end.
    static let migrations: [(version: String, statements: [String])] = [
        ("v1", [
            """
            CREATE TABLE jobs (
                seq BIGSERIAL PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                batch_id TEXT,
                status TEXT NOT NULL,
                filename TEXT,
                bytes BIGINT NOT NULL,
                duration_s DOUBLE PRECISION NOT NULL,
                language TEXT,
                task TEXT,
                hotwords TEXT,
                model TEXT,
                progress DOUBLE PRECISION NOT NULL DEFAULT 0,
                attempts INTEGER NOT NULL DEFAULT 0,
                max_attempts INTEGER NOT NULL,
                error_code TEXT,
                error_message TEXT,
                created_at TIMESTAMPTZ NOT NULL,
                started_at TIMESTAMPTZ,
                finished_at TIMESTAMPTZ,
                not_before TIMESTAMPTZ,
                lease_owner TEXT,
                lease_expires_at TIMESTAMPTZ,
                owner TEXT
            )
            """,
            "CREATE INDEX jobs_queued ON jobs (seq) WHERE status = 'queued'",
            "CREATE INDEX jobs_running ON jobs (lease_expires_at) WHERE status = 'running'",
            "CREATE INDEX jobs_by_batch ON jobs (batch_id) WHERE batch_id IS NOT NULL",
            "CREATE INDEX jobs_by_owner ON jobs (owner, seq) WHERE owner IS NOT NULL",
            "CREATE INDEX jobs_by_finish ON jobs (finished_at) WHERE finished_at IS NOT NULL",
            """
            CREATE TABLE results (
                job_id TEXT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
                transcript TEXT NOT NULL,
                created_at TIMESTAMPTZ NOT NULL
            )
            """,
            """
            CREATE TABLE incidents (
                id BIGSERIAL PRIMARY KEY,
                kind TEXT NOT NULL,
                cause TEXT NOT NULL,
                message TEXT NOT NULL,
                job_id TEXT,
                filename TEXT,
                node TEXT,
                opened_at TIMESTAMPTZ NOT NULL,
                resolved_at TIMESTAMPTZ
            )
            """,
            "CREATE INDEX incidents_by_time ON incidents (opened_at)",
        ]),
        ("v2-audio", [
            """
            CREATE TABLE audio_chunks (
                job_id TEXT NOT NULL,
                seq INTEGER NOT NULL,
                data BYTEA NOT NULL,
                stored_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                PRIMARY KEY (job_id, seq)
            )
            """,
            // Chunks are read once and deleted; compressing audio buys little.
            "ALTER TABLE audio_chunks ALTER COLUMN data SET STORAGE EXTERNAL",
        ]),
        ("v3-nodes", [
            """
            CREATE TABLE nodes (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                role TEXT NOT NULL,
                workers INTEGER NOT NULL,
                running INTEGER NOT NULL,
                started_at TIMESTAMPTZ NOT NULL,
                last_seen TIMESTAMPTZ NOT NULL
            )
            """,
        ]),
        ("v4-allow-partial", ["ALTER TABLE jobs ADD COLUMN allow_partial BOOLEAN NOT NULL DEFAULT false"]),
    ]

    /// Brings the database's schema up to date.
    static func migrate(_ db: PostgresConnection, logger: Logger) async throws {
        try await db.query("SELECT pg_advisory_lock(\(lock))", logger: logger)
        do {
            try await db.query("""
                CREATE TABLE IF NOT EXISTS tingxie_migrations (version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())
                """, logger: logger)
            let applied = Set(try await db.query("SELECT version FROM tingxie_migrations", logger: logger).collect()
                .map { try $0.decode(String.self) })
            for migration in migrations where !applied.contains(migration.version) {
                try await db.withTransaction(logger: logger) { db in
                    for statement in migration.statements {
                        try await db.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    try await db.query("INSERT INTO tingxie_migrations (version) VALUES (\(migration.version))", logger: logger)
                }
                logger.info("job store migrated", metadata: ["version": "\(migration.version)"])
            }
        } catch {
            _ = try? await db.query("SELECT pg_advisory_unlock(\(lock))", logger: logger)
            throw error
        }
        try await db.query("SELECT pg_advisory_unlock(\(lock))", logger: logger)
    }
}
