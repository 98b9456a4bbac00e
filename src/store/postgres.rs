//! A PostgreSQL store: records, transcripts and leases in three tables, for a fleet of
//! supervisors on one database.
//!
//! Built on `tokio-postgres` (plain SQL, no macros, no database needed at build time) with
//! `deadpool-postgres`'s small async pool. Migrations run on connect, under an advisory lock (so
//! several supervisors may connect at once). Transcript entries are unique by (session name,
//! conversation, file, key); leases use the server's clock; every fenced write checks the token
//! in the same transaction as the write, holding the lease row (`FOR SHARE`), so a takeover
//! cannot slip in between.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures::future::BoxFuture;
use tokio_postgres::NoTls;

use super::transcript::ttl_ms;
use super::{
    Lease, LeaseStatus, SessionRecord, SessionStore, StoreError, TranscriptEntry, TranscriptFile,
};

/// The schema, one migration per entry; applied in order, each once.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE claude_sessions (
    name text PRIMARY KEY,
    record text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE claude_transcript_entries (
    name text NOT NULL,
    session_id text NOT NULL,
    file text NOT NULL,
    key text NOT NULL,
    seq bigserial NOT NULL,
    line text NOT NULL,
    PRIMARY KEY (name, session_id, file, key)
);
CREATE INDEX claude_transcript_entries_order
    ON claude_transcript_entries (name, session_id, file, seq);
CREATE TABLE claude_leases (
    name text PRIMARY KEY,
    owner text,
    token bigint NOT NULL,
    expires_at timestamptz
);
"#];

/// How long getting a connection (from the pool, or a new one) may take.
const STORE_CALL_LIMIT: Duration = Duration::from_secs(10);

/// An arbitrary constant: the advisory lock that serializes migrations.
const MIGRATION_LOCK: i64 = 0x636c_6175_6465;

/// Keeps records, transcripts and leases in PostgreSQL.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// The URL without its password, for errors.
    url: String,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// `url` with its password (URL user info or `password=` in key/value form) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if let Some(at) = authority.rfind('@') {
            let userinfo = &authority[..at];
            if let Some(colon) = userinfo.find(':') {
                return format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &rest[at..]
                );
            }
        }
        // A `password=` query parameter.
        return redact_pairs(url, '&');
    }
    redact_pairs(url, ' ')
}

fn redact_pairs(text: &str, sep: char) -> String {
    let mut out = String::with_capacity(text.len());
    let mut skipping = false;
    let lower = text.to_ascii_lowercase();
    let mut i = 0;
    while i < text.len() {
        if !skipping && lower[i..].starts_with("password=") {
            out.push_str(&text[i..i + "password=".len()]);
            out.push_str("***");
            i += "password=".len();
            skipping = true;
            continue;
        }
        let c = text[i..].chars().next().expect("in bounds");
        if skipping {
            if c == sep {
                skipping = false;
                out.push(c);
            }
        } else {
            out.push(c);
        }
        i += c.len_utf8();
    }
    out
}

fn db_error<'u>(
    url: &'u str,
    action: &'static str,
) -> impl FnOnce(tokio_postgres::Error) -> StoreError + 'u {
    move |e| StoreError::Database {
        url: url.to_owned(),
        action,
        source: Box::new(e),
    }
}

impl PostgresStore {
    /// Connects to `url` (a `postgresql://` URL or a `key=value` string), checks that the
    /// server answers, and applies the schema's migrations.
    ///
    /// # Errors
    ///
    /// [`StoreError::Database`] naming the URL (without its password) and what failed: an
    /// invalid URL, an unreachable server, a failed migration.
    ///
    /// # Cancel safety
    ///
    /// A migration runs in one transaction: dropping the future leaves it applied or not.
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        let shown = redact_url(url);
        let mut config: tokio_postgres::Config =
            url.parse().map_err(db_error(&shown, "parsing"))?;
        // A server behind a partition must fail a call in bounded time, not hang it: a connect
        // timeout (unless the URL sets one), keepalives on idle connections, and pool timeouts
        // below.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(STORE_CALL_LIMIT);
        }
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(15));
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(8)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(STORE_CALL_LIMIT))
            .create_timeout(Some(STORE_CALL_LIMIT))
            .recycle_timeout(Some(STORE_CALL_LIMIT))
            .build()
            .map_err(|e| StoreError::Database {
                url: shown.clone(),
                action: "building a pool for",
                source: Box::new(e),
            })?;
        let store = PostgresStore { pool, url: shown };
        store.migrate().await?;
        Ok(store)
    }

    /// The URL it connected to, without the password.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| StoreError::Database {
            url: self.url.clone(),
            action: "connecting to",
            source: Box::new(e),
        })
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let url = self.url.as_str();
        let tx = client
            .transaction()
            .await
            .map_err(db_error(url, "migrating"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(db_error(url, "migrating"))?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS claude_schema_migrations (
                version integer PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await
        .map_err(db_error(url, "migrating"))?;
        let applied: i32 = tx
            .query_one(
                "SELECT coalesce(max(version), 0) FROM claude_schema_migrations",
                &[],
            )
            .await
            .map_err(db_error(url, "migrating"))?
            .get(0);
        for (i, sql) in MIGRATIONS.iter().enumerate() {
            let version = i as i32 + 1;
            if version <= applied {
                continue;
            }
            tx.batch_execute(sql)
                .await
                .map_err(db_error(url, "migrating"))?;
            tx.execute(
                "INSERT INTO claude_schema_migrations (version) VALUES ($1)",
                &[&version],
            )
            .await
            .map_err(db_error(url, "migrating"))?;
        }
        tx.commit().await.map_err(db_error(url, "migrating"))
    }

    /// Checks `fence` against `name`'s lease inside `tx`, holding the lease row until commit.
    async fn check_fence(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        name: &str,
        fence: Option<u64>,
    ) -> Result<(), StoreError> {
        let Some(token) = fence else { return Ok(()) };
        let row = tx
            .query_opt(
                "SELECT token, owner IS NOT NULL FROM claude_leases WHERE name = $1 FOR SHARE",
                &[&name],
            )
            .await
            .map_err(db_error(&self.url, "checking the lease in"))?;
        let (current, held) = row.map_or((0, false), |r| (r.get::<_, i64>(0) as u64, r.get(1)));
        if held && current == token {
            Ok(())
        } else {
            Err(StoreError::StaleFence {
                name: name.to_owned(),
                token,
                current,
            })
        }
    }

    async fn save_impl(
        &self,
        record: &SessionRecord,
        fence: Option<u64>,
    ) -> Result<(), StoreError> {
        let text = serde_json::to_string(record)
            .map_err(|e| StoreError::Other(format!("could not encode record: {e}")))?;
        let mut client = self.client().await?;
        let url = self.url.as_str();
        let tx = client
            .transaction()
            .await
            .map_err(db_error(url, "writing to"))?;
        self.check_fence(&tx, &record.name, fence).await?;
        tx.execute(
            "INSERT INTO claude_sessions (name, record) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET record = EXCLUDED.record, updated_at = now()",
            &[&record.name, &text],
        )
        .await
        .map_err(db_error(url, "writing to"))?;
        tx.commit().await.map_err(db_error(url, "writing to"))
    }

    async fn lease_row(
        &self,
        name: &str,
    ) -> Result<Option<(Option<String>, u64, u64)>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT owner, token, coalesce((extract(epoch FROM expires_at) * 1000)::bigint, 0)
                 FROM claude_leases WHERE name = $1",
                &[&name],
            )
            .await
            .map_err(db_error(&self.url, "reading a lease from"))?;
        Ok(row.map(|r| {
            (
                r.get(0),
                r.get::<_, i64>(1) as u64,
                r.get::<_, i64>(2) as u64,
            )
        }))
    }
}

fn lease_of(name: &str, row: &tokio_postgres::Row) -> Lease {
    Lease {
        name: name.to_owned(),
        owner: row.get(0),
        token: row.get::<_, i64>(1) as u64,
        expires_at_ms: row.get::<_, i64>(2) as u64,
    }
}

fn ttl_param(ttl: Duration) -> i64 {
    i64::try_from(ttl_ms(ttl)).unwrap_or(i64::MAX)
}

impl SessionStore for PostgresStore {
    fn load<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, StoreError>> {
        Box::pin(async move {
            let client = self.client().await?;
            let row = client
                .query_opt(
                    "SELECT record FROM claude_sessions WHERE name = $1",
                    &[&name],
                )
                .await
                .map_err(db_error(&self.url, "reading from"))?;
            row.map(|r| {
                let text: String = r.get(0);
                serde_json::from_str(&text).map_err(|source| StoreError::Corrupt {
                    path: format!("{}#claude_sessions/{name}", self.url).into(),
                    source,
                })
            })
            .transpose()
        })
    }

    fn save<'a>(&'a self, record: &'a SessionRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.save_impl(record, None))
    }

    fn delete<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            let url = self.url.as_str();
            let tx = client
                .transaction()
                .await
                .map_err(db_error(url, "deleting from"))?;
            tx.execute("DELETE FROM claude_sessions WHERE name = $1", &[&name])
                .await
                .map_err(db_error(url, "deleting from"))?;
            tx.execute(
                "DELETE FROM claude_transcript_entries WHERE name = $1",
                &[&name],
            )
            .await
            .map_err(db_error(url, "deleting from"))?;
            tx.commit().await.map_err(db_error(url, "deleting from"))
        })
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<SessionRecord>, StoreError>> {
        Box::pin(async move {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT name, record FROM claude_sessions ORDER BY name",
                    &[],
                )
                .await
                .map_err(db_error(&self.url, "listing"))?;
            rows.iter()
                .map(|r| {
                    let (name, text): (String, String) = (r.get(0), r.get(1));
                    serde_json::from_str(&text).map_err(|source| StoreError::Corrupt {
                        path: format!("{}#claude_sessions/{name}", self.url).into(),
                        source,
                    })
                })
                .collect()
        })
    }

    fn holds_transcripts(&self) -> bool {
        true
    }

    fn append_entries<'a>(
        &'a self,
        name: &'a str,
        session_id: &'a str,
        file: &'a str,
        entries: &'a [TranscriptEntry],
        fence: Option<u64>,
    ) -> BoxFuture<'a, Result<usize, StoreError>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            let url = self.url.as_str();
            let tx = client
                .transaction()
                .await
                .map_err(db_error(url, "appending to"))?;
            self.check_fence(&tx, name, fence).await?;
            let insert = tx
                .prepare(
                    "INSERT INTO claude_transcript_entries (name, session_id, file, key, line)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .await
                .map_err(db_error(url, "appending to"))?;
            let mut added = 0;
            for e in entries {
                added += tx
                    .execute(&insert, &[&name, &session_id, &file, &e.key, &e.line])
                    .await
                    .map_err(db_error(url, "appending to"))? as usize;
            }
            tx.commit().await.map_err(db_error(url, "appending to"))?;
            Ok(added)
        })
    }

    fn load_entries<'a>(
        &'a self,
        name: &'a str,
        session_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<TranscriptFile>, StoreError>> {
        Box::pin(async move {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT file, key, line FROM claude_transcript_entries
                     WHERE name = $1 AND session_id = $2 ORDER BY file, seq",
                    &[&name, &session_id],
                )
                .await
                .map_err(db_error(&self.url, "reading from"))?;
            let mut files: Vec<TranscriptFile> = Vec::new();
            for r in rows {
                let file: String = r.get(0);
                let entry = TranscriptEntry {
                    key: r.get(1),
                    line: r.get(2),
                };
                match files.last_mut() {
                    Some(f) if f.file == file => f.entries.push(entry),
                    _ => files.push(TranscriptFile {
                        file,
                        entries: vec![entry],
                    }),
                }
            }
            Ok(super::main_file_first(files, session_id))
        })
    }

    fn save_fenced<'a>(
        &'a self,
        record: &'a SessionRecord,
        fence: Option<u64>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.save_impl(record, fence))
    }

    fn acquire_lease<'a>(
        &'a self,
        name: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Lease, StoreError>> {
        Box::pin(async move {
            let client = self.client().await?;
            // Granted when free, expired, or already ours (then extended, same token); a new
            // owner gets the next token. One statement: atomic under concurrent acquirers.
            let row = client
                .query_opt(
                    "INSERT INTO claude_leases AS l (name, owner, token, expires_at)
                     VALUES ($1, $2, 1, now() + $3 * interval '1 millisecond')
                     ON CONFLICT (name) DO UPDATE SET
                         owner = EXCLUDED.owner,
                         token = CASE WHEN l.owner = EXCLUDED.owner THEN l.token ELSE l.token + 1 END,
                         expires_at = EXCLUDED.expires_at
                     WHERE l.owner IS NULL OR l.owner = EXCLUDED.owner OR l.expires_at <= now()
                     RETURNING owner, token, (extract(epoch FROM expires_at) * 1000)::bigint",
                    &[&name, &owner, &(ttl_param(ttl) as f64)],
                )
                .await
                .map_err(db_error(&self.url, "taking a lease in"))?;
            if let Some(row) = row {
                return Ok(lease_of(name, &row));
            }
            let (holder, token, expires_at_ms) =
                self.lease_row(name).await?.unwrap_or((None, 0, 0));
            Err(StoreError::LeaseHeld {
                name: name.to_owned(),
                owner: holder.unwrap_or_default(),
                token,
                expires_at_ms,
            })
        })
    }

    fn renew_lease<'a>(
        &'a self,
        lease: &'a Lease,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Lease, StoreError>> {
        Box::pin(async move {
            let client = self.client().await?;
            let row = client
                .query_opt(
                    "UPDATE claude_leases SET expires_at = now() + $3 * interval '1 millisecond'
                     WHERE name = $1 AND token = $2 AND owner IS NOT NULL
                     RETURNING owner, token, (extract(epoch FROM expires_at) * 1000)::bigint",
                    &[&lease.name, &(lease.token as i64), &(ttl_param(ttl) as f64)],
                )
                .await
                .map_err(db_error(&self.url, "renewing a lease in"))?;
            match row {
                Some(row) => Ok(lease_of(&lease.name, &row)),
                None => Err(StoreError::StaleFence {
                    name: lease.name.clone(),
                    token: lease.token,
                    current: self.lease_row(&lease.name).await?.map_or(0, |r| r.1),
                }),
            }
        })
    }

    fn renew_leases<'a>(
        &'a self,
        leases: &'a [Lease],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Vec<Result<Lease, StoreError>>, StoreError>> {
        Box::pin(async move {
            if leases.is_empty() {
                return Ok(Vec::new());
            }
            let client = self.client().await?;
            let names: Vec<&str> = leases.iter().map(|l| l.name.as_str()).collect();
            let tokens: Vec<i64> = leases.iter().map(|l| l.token as i64).collect();
            // One statement for a node's whole heartbeat, however many sessions it owns.
            let rows = client
                .query(
                    "UPDATE claude_leases AS l SET expires_at = now() + $3 * interval '1 millisecond'
                     FROM unnest($1::text[], $2::bigint[]) AS h(name, token)
                     WHERE l.name = h.name AND l.token = h.token AND l.owner IS NOT NULL
                     RETURNING l.name, l.owner, l.token, (extract(epoch FROM l.expires_at) * 1000)::bigint",
                    &[&names, &tokens, &(ttl_param(ttl) as f64)],
                )
                .await
                .map_err(db_error(&self.url, "renewing leases in"))?;
            let mut renewed: std::collections::HashMap<String, Lease> = rows
                .iter()
                .map(|r| {
                    let name: String = r.get(0);
                    let lease = Lease {
                        name: name.clone(),
                        owner: r.get(1),
                        token: r.get::<_, i64>(2) as u64,
                        expires_at_ms: r.get::<_, i64>(3) as u64,
                    };
                    (name, lease)
                })
                .collect();
            let mut out = Vec::with_capacity(leases.len());
            for l in leases {
                match renewed.remove(&l.name) {
                    Some(lease) => out.push(Ok(lease)),
                    // Rare (a lease lost): its current token is read for the error.
                    None => out.push(Err(StoreError::StaleFence {
                        name: l.name.clone(),
                        token: l.token,
                        current: self.lease_row(&l.name).await?.map_or(0, |r| r.1),
                    })),
                }
            }
            Ok(out)
        })
    }

    fn list_leases(&self) -> BoxFuture<'_, Result<Vec<LeaseStatus>, StoreError>> {
        Box::pin(async move {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT name, owner, token, (extract(epoch FROM expires_at) * 1000)::bigint,
                            expires_at <= now()
                     FROM claude_leases WHERE owner IS NOT NULL ORDER BY name",
                    &[],
                )
                .await
                .map_err(db_error(&self.url, "listing leases in"))?;
            Ok(rows
                .iter()
                .map(|r| LeaseStatus {
                    lease: Lease {
                        name: r.get(0),
                        owner: r.get(1),
                        token: r.get::<_, i64>(2) as u64,
                        expires_at_ms: r.get::<_, i64>(3) as u64,
                    },
                    expired: r.get(4),
                })
                .collect())
        })
    }

    fn release_lease<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let client = self.client().await?;
            client
                .execute(
                    "UPDATE claude_leases SET owner = NULL, expires_at = NULL
                     WHERE name = $1 AND token = $2",
                    &[&lease.name, &(lease.token as i64)],
                )
                .await
                .map_err(db_error(&self.url, "releasing a lease in"))?;
            Ok(())
        })
    }

    fn revoke_lease<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Lease>, StoreError>> {
        Box::pin(async move {
            let client = self.client().await?;
            // The row is locked by the subquery, so the lease returned is the one ended.
            let row = client
                .query_opt(
                    "UPDATE claude_leases AS l SET owner = NULL, expires_at = NULL
                     FROM (SELECT name, owner, token, expires_at FROM claude_leases
                           WHERE name = $1 AND owner IS NOT NULL FOR UPDATE) AS old
                     WHERE l.name = old.name
                     RETURNING old.owner, old.token,
                               coalesce((extract(epoch FROM old.expires_at) * 1000)::bigint, 0)",
                    &[&name],
                )
                .await
                .map_err(db_error(&self.url, "revoking a lease in"))?;
            Ok(row.map(|r| lease_of(name, &r)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact_url("postgresql://app:s3cret@db.example:5432/agents"),
            "postgresql://app:***@db.example:5432/agents"
        );
        assert_eq!(
            redact_url("postgres://app@db/agents?password=s3cret&sslmode=disable"),
            "postgres://app@db/agents?password=***&sslmode=disable"
        );
        assert_eq!(
            redact_url("host=db user=app password=s3cret dbname=agents"),
            "host=db user=app password=*** dbname=agents"
        );
        assert_eq!(
            redact_url("postgresql://app@db/agents"),
            "postgresql://app@db/agents"
        );
    }
}
