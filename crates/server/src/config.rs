//! The server's config file (TOML): the tree, its store, the HTTP listener, what clients may
//! set, and the named sessions to run.
//!
//! Every table and key is checked: an unknown key, a value of the wrong type or a value that
//! makes no sense is refused at start with the key's path, its line and what was expected
//! ([`ConfigError`]). With no file, [`Config::default`] is the embedded default: loopback, a
//! `FileStore` under the user's data dir, no static sessions.
//!
//! ```toml
//! [server]
//! listen = "127.0.0.1:7300"
//! token_env = "CLAUDE_SUPERVISOR_TOKEN"   # required for any non-loopback listen address
//!
//! [store]
//! kind = "postgres"
//! url_env = "DATABASE_URL"
//!
//! [clients]
//! allow = ["model", "append_system_prompt", "max_turns"]
//!
//! [[sessions]]
//! name = "reviewer"
//! append_system_prompt = "You review diffs. Be brief."
//! allowed_tools = ["Read", "Grep"]
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use claude_supervisor::Agent;
use serde::{Deserialize, Serialize};

/// The whole config file.
///
/// Its `Debug` and its serialization carry no secret: credentials are only ever named by the
/// environment variable that holds them.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// The HTTP listener and its limits.
    pub server: ServerSection,
    /// The supervision tree.
    pub supervisor: SupervisorSection,
    /// Where records and conversations are kept.
    pub store: StoreSection,
    /// This server as one node of a fleet (several servers on one PostgreSQL).
    pub fleet: Option<FleetSection>,
    /// Where the CLIs run: on this machine (default), or through a command prefix (ssh,
    /// docker exec, kubectl exec).
    pub launcher: Option<LauncherSection>,
    /// What a client may set when it starts a session over HTTP.
    pub clients: ClientPolicy,
    /// The template of sessions started over HTTP (a client's allowed keys go on top).
    pub defaults: Agent,
    /// The named sessions the server runs from the start (`[[sessions]]`).
    pub sessions: Vec<Agent>,
    /// The credential gateway between the CLIs and the API.
    pub gateway: GatewaySection,
    /// The server's own keys of each `[[sessions]]` entry (egress, budget group), by index:
    /// `session_extras[i]` belongs to `sessions[i]` (a missing entry is the default).
    #[serde(skip)]
    pub session_extras: Vec<SessionExtras>,
    /// The server's own keys of `[defaults]`.
    #[serde(skip)]
    pub defaults_extras: SessionExtras,
}

/// A session as the file writes it: an [`Agent`]'s keys and the server's own.
#[derive(Serialize)]
struct SessionOut<'a> {
    #[serde(flatten)]
    agent: &'a Agent,
    #[serde(flatten)]
    extras: &'a SessionExtras,
}

/// The file's shape for serialization: the sessions with their extra keys back in place.
#[derive(Serialize)]
struct ConfigOut<'a> {
    server: &'a ServerSection,
    supervisor: &'a SupervisorSection,
    store: &'a StoreSection,
    #[serde(skip_serializing_if = "Option::is_none")]
    fleet: &'a Option<FleetSection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    launcher: &'a Option<LauncherSection>,
    clients: &'a ClientPolicy,
    gateway: &'a GatewaySection,
    defaults: SessionOut<'a>,
    sessions: Vec<SessionOut<'a>>,
}

impl Serialize for Config {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let none = SessionExtras::default();
        ConfigOut {
            server: &self.server,
            supervisor: &self.supervisor,
            store: &self.store,
            fleet: &self.fleet,
            launcher: &self.launcher,
            clients: &self.clients,
            gateway: &self.gateway,
            defaults: SessionOut {
                agent: &self.defaults,
                extras: &self.defaults_extras,
            },
            sessions: self
                .sessions
                .iter()
                .enumerate()
                .map(|(i, agent)| SessionOut {
                    agent,
                    extras: self.session_extras.get(i).unwrap_or(&none),
                })
                .collect(),
        }
        .serialize(serializer)
    }
}

/// The keys of `[[sessions]]` and `[defaults]` that are the server's, not an [`Agent`]'s: what
/// the session's processes may connect to, and whose gateway budget it shares.
///
/// ```toml
/// [[sessions]]
/// name = "reviewer"
/// egress = ["127.0.0.1:3128"]   # only this address (and the tree's gateway)
/// egress_required = true        # refuse to launch where it cannot be enforced
/// budget_group = "ci"           # shares [gateway.groups.ci]
/// ```
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SessionExtras {
    /// The only addresses the session's processes may connect to (the tree's gateway is
    /// added to them); `None`: no egress policy, they reach whatever the host can.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub egress: Option<Vec<SocketAddr>>,
    /// Whether a launch that cannot enforce `egress` fails (default: it runs, reported as not
    /// enforced in `/health`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub egress_required: bool,
    /// The gateway budget group it shares (`[gateway.groups.<name>]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_group: Option<String>,
}

impl SessionExtras {
    /// The keys, as a session's table in the file writes them.
    pub const KEYS: &'static [&'static str] = &["egress", "egress_required", "budget_group"];

    /// The egress policy: `deny_all` plus the listed addresses (`require`d if so configured),
    /// or `None` without `egress`.
    pub fn egress_policy(&self) -> Option<claude_supervisor::EgressPolicy> {
        let allowed = self.egress.as_ref()?;
        let policy = claude_supervisor::EgressPolicy::deny_all().allow_all(allowed.iter().copied());
        Some(if self.egress_required {
            policy.require()
        } else {
            policy
        })
    }
}

/// `[gateway]`: the credential gateway. On by default when a credential is found in the
/// server's environment: the CLIs then get a per-session token and the gateway's URL, never
/// the credential itself.
///
/// ```toml
/// [gateway]
/// credential_env = "MY_ANTHROPIC_KEY"   # default: ANTHROPIC_API_KEY, ANTHROPIC_AUTH_TOKEN, …
/// credential_kind = "api_key"           # or "bearer"
/// [gateway.session_budget]
/// requests_per_minute = 30
/// [gateway.groups.ci]
/// dollars = 20.0
/// dollars_period = "24h"
/// ```
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct GatewaySection {
    /// `true`: a gateway (a credential is then required); `false`: none, the CLIs inherit the
    /// server's credential variables; unset: a gateway when a credential is found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Where it forwards to (default: the server's `ANTHROPIC_BASE_URL`, else
    /// `https://api.anthropic.com`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// The server's environment variable holding the credential (default: `ANTHROPIC_API_KEY`
    /// as an API key, else `ANTHROPIC_AUTH_TOKEN`, else `CLAUDE_CODE_OAUTH_TOKEN` as a bearer
    /// token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_env: Option<String>,
    /// What `credential_env` holds (default `api_key`); only with `credential_env`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_kind: Option<CredentialKind>,
    /// Larger request bodies get 413 (default 32 MiB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<usize>,
    /// How long a connection to the upstream may take (default 10 s).
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub connect_timeout: Option<Duration>,
    /// How long a CLI may take to send a request's headers (default 10 s).
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub header_read_timeout: Option<Duration>,
    /// How long a request body may go without a byte (default 30 s).
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub body_idle_timeout: Option<Duration>,
    /// Every session's own budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_budget: Option<BudgetSection>,
    /// The budgets of the groups sessions name with `budget_group`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, BudgetSection>,
}

/// What a `[gateway] credential_env` holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// An API key, sent upstream as `x-api-key`.
    ApiKey,
    /// A bearer token (OAuth, a gateway's token), sent as `authorization: Bearer`.
    Bearer,
}

impl CredentialKind {
    /// `api_key` or `bearer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::Bearer => "bearer",
        }
    }
}

/// `[gateway.session_budget]`, `[gateway.groups.<name>]`: limits per fixed window.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct BudgetSection {
    /// At most this many requests per minute (or use `requests` + `requests_period`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u64>,
    /// At most this many requests per `requests_period`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    /// The window of `requests` (`"1h"`).
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub requests_period: Option<Duration>,
    /// At most this many tokens (input, output, cache writes and reads) per `tokens_period`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    /// The window of `tokens`.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub tokens_period: Option<Duration>,
    /// At most this many US dollars per `dollars_period`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dollars: Option<f64>,
    /// The window of `dollars`.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub dollars_period: Option<Duration>,
}

impl BudgetSection {
    /// Checks the pairs (a limit needs its period and the reverse) and the values; `Err` is
    /// the key (under this table) and what is wrong.
    fn check(&self) -> Result<(), (&'static str, String)> {
        if self.requests_per_minute.is_some() && self.requests.is_some() {
            return Err((
                "requests_per_minute",
                "set `requests_per_minute` or `requests` + `requests_period`, not both".into(),
            ));
        }
        let pairs = [
            (
                "requests",
                self.requests.is_some(),
                "requests_period",
                self.requests_period,
            ),
            (
                "tokens",
                self.tokens.is_some(),
                "tokens_period",
                self.tokens_period,
            ),
            (
                "dollars",
                self.dollars.is_some(),
                "dollars_period",
                self.dollars_period,
            ),
        ];
        for (limit, has_limit, period_key, period) in pairs {
            match (has_limit, period) {
                (true, None) => {
                    return Err((
                        limit,
                        format!(
                            "`{limit}` needs its window: `{period_key} = \"1h\"` (a humantime duration)"
                        ),
                    ));
                }
                (false, Some(_)) => {
                    return Err((
                        period_key,
                        format!("`{period_key}` without `{limit}` limits nothing"),
                    ));
                }
                (_, Some(p)) if p.is_zero() => {
                    return Err((period_key, "a window must be longer than 0".into()));
                }
                _ => {}
            }
        }
        if let Some(d) = self.dollars
            && !(d.is_finite() && d >= 0.0)
        {
            return Err((
                "dollars",
                format!("{d} is not a dollar amount (finite, not negative)"),
            ));
        }
        Ok(())
    }

    /// The facade's [`Budget`](claude_supervisor::Budget).
    pub fn budget(&self) -> claude_supervisor::Budget {
        let mut budget = claude_supervisor::Budget::new();
        if let Some(n) = self.requests_per_minute {
            budget = budget.requests_per_minute(n);
        }
        if let (Some(n), Some(p)) = (self.requests, self.requests_period) {
            budget = budget.requests(n, p);
        }
        if let (Some(n), Some(p)) = (self.tokens, self.tokens_period) {
            budget = budget.tokens(n, p);
        }
        if let (Some(d), Some(p)) = (self.dollars, self.dollars_period) {
            budget = budget.dollars(d, p);
        }
        budget
    }
}

/// The credential variables looked for when `credential_env` is not set, in order, with what
/// each holds.
pub const DEFAULT_CREDENTIAL_VARS: &[(&str, CredentialKind)] = &[
    ("ANTHROPIC_API_KEY", CredentialKind::ApiKey),
    ("ANTHROPIC_AUTH_TOKEN", CredentialKind::Bearer),
    ("CLAUDE_CODE_OAUTH_TOKEN", CredentialKind::Bearer),
];

/// The upstream when neither `[gateway] upstream` nor the server's `ANTHROPIC_BASE_URL` is set.
pub const DEFAULT_UPSTREAM: &str = "https://api.anthropic.com";

/// The gateway the server will run, resolved from `[gateway]` and the server's environment.
/// Its `Debug` shows the credential as `***`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ResolvedGateway {
    /// The facade's config (upstream, credential, limits, budgets).
    pub config: claude_supervisor::GatewayConfig,
    /// The variable the credential came from (removed from every CLI's environment).
    pub credential_env: String,
    /// What it holds.
    pub kind: CredentialKind,
    /// The upstream, with any user and password in it shown as `***`.
    pub upstream_display: String,
}

/// The credential the CLIs get in their own environment when the gateway is off
/// ([`GatewaySection::direct_credential`]). Its `Debug` shows `***`.
#[derive(Clone)]
#[non_exhaustive]
pub struct DirectCredential {
    /// The CLI's variable it goes in.
    pub cli_var: &'static str,
    /// The credential.
    pub secret: String,
}

impl std::fmt::Debug for DirectCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectCredential")
            .field("cli_var", &self.cli_var)
            .field("secret", &"***")
            .finish()
    }
}

impl GatewaySection {
    /// What `[gateway]` and the environment (`env`: a variable's value, if set and not empty)
    /// make: `Ok(None)` when there is no gateway (`enabled = false`, or unset with no
    /// credential found).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Value`] on `gateway.enabled` (or `gateway.credential_env`) when
    /// `enabled = true` (or `credential_env` is set) but no credential is found, naming the
    /// variables looked for — never their values.
    pub fn resolve(
        &self,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<ResolvedGateway>, ConfigError> {
        if self.enabled == Some(false) {
            return Ok(None);
        }
        let value = |key: &str, message: String| ConfigError::Value {
            path: path.to_owned(),
            key: key.to_owned(),
            message,
        };
        let found = match &self.credential_env {
            Some(var) => match env(var) {
                Some(secret) => Some((
                    var.clone(),
                    self.credential_kind.unwrap_or(CredentialKind::ApiKey),
                    secret,
                )),
                None => {
                    return Err(value(
                        "gateway.credential_env",
                        format!(
                            "the environment variable `{var}` is not set (or empty): the gateway has no credential to forward; set it, or `enabled = false`"
                        ),
                    ));
                }
            },
            None => DEFAULT_CREDENTIAL_VARS
                .iter()
                .find_map(|(var, kind)| env(var).map(|s| ((*var).to_owned(), *kind, s))),
        };
        let Some((credential_env, kind, secret)) = found else {
            if self.enabled == Some(true) {
                let names: Vec<&str> = DEFAULT_CREDENTIAL_VARS.iter().map(|(v, _)| *v).collect();
                return Err(value(
                    "gateway.enabled",
                    format!(
                        "the gateway is enabled but no credential was found: none of {} is set in the server's environment; set one, name another with `credential_env`, or `enabled = false`",
                        names.join(", ")
                    ),
                ));
            }
            return Ok(None);
        };
        let upstream = self
            .upstream
            .clone()
            .or_else(|| env("ANTHROPIC_BASE_URL"))
            .unwrap_or_else(|| DEFAULT_UPSTREAM.to_owned());
        let credential = match kind {
            CredentialKind::ApiKey => claude_supervisor::Credential::ApiKey(secret),
            CredentialKind::Bearer => claude_supervisor::Credential::Bearer(secret),
        };
        let mut config = claude_supervisor::GatewayConfig::new(upstream.clone(), credential);
        if let Some(n) = self.max_body_bytes {
            config = config.max_body_bytes(n);
        }
        if let Some(t) = self.connect_timeout {
            config = config.connect_timeout(t);
        }
        if let Some(t) = self.header_read_timeout {
            config = config.header_read_timeout(t);
        }
        if let Some(t) = self.body_idle_timeout {
            config = config.body_idle_timeout(t);
        }
        if let Some(b) = &self.session_budget {
            config = config.session_budget(b.budget());
        }
        for (name, b) in &self.groups {
            config = config.group_budget(name.clone(), b.budget());
        }
        Ok(Some(ResolvedGateway {
            config,
            credential_env,
            kind,
            upstream_display: redact_userinfo(&upstream),
        }))
    }

    /// With `enabled = false` and `credential_env` set: the credential to give the CLIs
    /// themselves (as `ANTHROPIC_API_KEY`, or `ANTHROPIC_AUTH_TOKEN` for a bearer token);
    /// `Ok(None)` otherwise (with the gateway on, or with no variable named: the CLIs' own
    /// environment policy passes the usual variables on).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Value`] on `gateway.credential_env` when the variable is not set.
    pub fn direct_credential(
        &self,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<DirectCredential>, ConfigError> {
        let (Some(false), Some(var)) = (self.enabled, &self.credential_env) else {
            return Ok(None);
        };
        let secret = env(var).ok_or_else(|| ConfigError::Value {
            path: path.to_owned(),
            key: "gateway.credential_env".into(),
            message: format!(
                "the environment variable `{var}` is not set (or empty): there is no credential to give the CLIs"
            ),
        })?;
        let kind = self.credential_kind.unwrap_or(CredentialKind::ApiKey);
        Ok(Some(DirectCredential {
            cli_var: match kind {
                CredentialKind::ApiKey => "ANTHROPIC_API_KEY",
                CredentialKind::Bearer => "ANTHROPIC_AUTH_TOKEN",
            },
            secret,
        }))
    }

    /// Checks what needs no environment: the URL, the limits, the budgets.
    fn check(&self, value: &dyn Fn(String, String) -> ConfigError) -> Result<(), ConfigError> {
        if self.credential_kind.is_some() && self.credential_env.is_none() {
            return Err(value(
                "gateway.credential_kind".into(),
                "`credential_kind` describes `credential_env`: set that too (the default variables have a kind of their own)".into(),
            ));
        }
        if let Some(upstream) = &self.upstream {
            match reqwest::Url::parse(upstream) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
                _ => {
                    return Err(value(
                        "gateway.upstream".into(),
                        format!(
                            "`{}` is not an http(s) URL (`https://api.anthropic.com`)",
                            redact_userinfo(upstream)
                        ),
                    ));
                }
            }
        }
        if self.max_body_bytes == Some(0) {
            return Err(value(
                "gateway.max_body_bytes".into(),
                "must be greater than 0".into(),
            ));
        }
        let timeouts = [
            ("connect_timeout", self.connect_timeout),
            ("header_read_timeout", self.header_read_timeout),
            ("body_idle_timeout", self.body_idle_timeout),
        ];
        for (key, t) in timeouts {
            if t.is_some_and(|t| t.is_zero()) {
                return Err(value(
                    format!("gateway.{key}"),
                    "must be longer than 0".into(),
                ));
            }
        }
        let budgets = self
            .session_budget
            .iter()
            .map(|b| ("gateway.session_budget".to_owned(), b))
            .chain(
                self.groups
                    .iter()
                    .map(|(name, b)| (format!("gateway.groups.{name}"), b)),
            );
        for (table, budget) in budgets {
            budget
                .check()
                .map_err(|(key, message)| value(format!("{table}.{key}"), message))?;
        }
        Ok(())
    }
}

/// `url` with any user and password replaced by `***` (a URL can carry a credential).
fn redact_userinfo(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("***");
            let _ = u.set_password(None);
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) if url.contains('@') => {
            "<not a URL; not shown: it may carry a user part>".to_owned()
        }
        Err(_) => url.to_owned(),
    }
}

/// `[server]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerSection {
    /// The listen address (default `127.0.0.1:7300`; port 0 picks a free one).
    pub listen: SocketAddr,
    /// The environment variable holding the bearer token.
    pub token_env: Option<String>,
    /// A file holding the bearer token (its first line).
    pub token_file: Option<PathBuf>,
    /// The largest request body, in bytes (default 1 MiB).
    pub max_body_bytes: usize,
    /// The largest total size of a request's headers, in bytes (default 16 KiB).
    pub max_header_bytes: usize,
    /// Requests per second per client address (default 50; 0: no limit).
    pub rate_limit_per_second: u32,
    /// Requests a client may send at once beyond the rate (default 100).
    pub rate_limit_burst: u32,
    /// How long running turns may go on after SIGTERM before the ordered shutdown (default 30 s).
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// Log format: `text` (default) or `json`.
    pub log_format: LogFormat,
    /// Export the sessions' and turns' spans over OTLP/HTTP to this URL
    /// (`http://collector:4318/v1/traces`; needs the `otel` feature, on by default).
    pub otlp_endpoint: Option<String>,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7300)),
            token_env: None,
            token_file: None,
            max_body_bytes: 1 << 20,
            max_header_bytes: 16 << 10,
            rate_limit_per_second: 50,
            rate_limit_burst: 100,
            drain_timeout: Duration::from_secs(30),
            log_format: LogFormat::Text,
            otlp_endpoint: None,
        }
    }
}

/// How logs are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[supervisor]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SupervisorSection {
    /// The tree's name (in logs and health).
    pub name: String,
    /// The CLI (default: discovery — `CLAUDE_CLI_PATH`, the data dir's installed CLI, `PATH`).
    pub cli_path: Option<PathBuf>,
    /// The server's data dir: the default `FileStore`, the installed CLI, per-session working
    /// directories (default: the user's data dir, `~/.local/share/claude-supervisor`).
    pub data_dir: Option<PathBuf>,
    /// At most this many sessions.
    pub max_sessions: Option<usize>,
    /// At most this many sessions per group (tenant).
    pub max_sessions_per_group: Option<usize>,
    /// How long a query waits for a restarting session (default 30 s).
    #[serde(with = "humantime_serde")]
    pub restart_wait: Option<Duration>,
    /// Keep this many warm spare CLIs, started with `[defaults]`' options: a session whose
    /// spawn-time options are the defaults' (a different `cwd`, permission mode or system
    /// prompt is fine) skips the CLI's start-up. Spares count toward `max_sessions`.
    pub warm_spares: Option<usize>,
}

impl Default for SupervisorSection {
    fn default() -> Self {
        Self {
            name: "claude-supervisor".into(),
            cli_path: None,
            data_dir: None,
            max_sessions: None,
            max_sessions_per_group: None,
            restart_wait: None,
            warm_spares: None,
        }
    }
}

/// `[store]`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct StoreSection {
    /// `file` (default), `memory` or `postgres`.
    pub kind: StoreKind,
    /// The `FileStore`'s folder (default `<data_dir>/store`).
    pub path: Option<PathBuf>,
    /// The PostgreSQL URL (prefer `url_env`: a URL in a file may carry a password).
    pub url: Option<String>,
    /// The environment variable holding the PostgreSQL URL.
    pub url_env: Option<String>,
}

/// The store backends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// Files in a folder: no server needed.
    #[default]
    File,
    /// In memory: gone with the process.
    Memory,
    /// PostgreSQL: conversations and leases for a fleet.
    Postgres,
}

/// `[fleet]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FleetSection {
    /// This node's id, unique in the fleet.
    pub node_id: String,
    /// The lease TTL (default 15 s).
    #[serde(default, with = "humantime_serde")]
    pub ttl: Option<Duration>,
    /// The heartbeat (default 5 s).
    #[serde(default, with = "humantime_serde")]
    pub heartbeat: Option<Duration>,
    /// At most this many sessions on this node.
    #[serde(default)]
    pub max_sessions_per_node: Option<usize>,
    /// The other nodes' URLs, by node id: a request for a session another node owns is
    /// forwarded to it; without its URL here, the answer is `409 owned_elsewhere` naming it.
    #[serde(default)]
    pub peers: std::collections::BTreeMap<String, String>,
}

/// `[launcher]`: the CLIs run through a command prefix.
///
/// ```toml
/// [launcher]
/// prefix = ["docker", "exec", "-i", "agents-box"]
/// remote = true    # the CLI's file system is not this machine's: files are staged through it
/// ```
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LauncherSection {
    /// The prefix: its first word is the program, the CLI's command line follows it.
    pub prefix: Vec<String>,
    /// Whether the CLI runs on another machine or container (a session's conversation file is
    /// then staged through the prefix before a resume).
    #[serde(default)]
    pub remote: bool,
}

/// `[clients]`: which keys of an [`Agent`] a client may set in `POST /sessions`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ClientPolicy {
    /// The allowed keys (default: [`ClientPolicy::DEFAULT_ALLOW`]). Keys that widen what a
    /// session may do (`permission_mode`, `add_dirs`, `cli_path`, `env`, `extra_args`, `cwd`,
    /// `allowed_tools`, …) are refused unless listed here.
    pub allow: Vec<String>,
}

impl ClientPolicy {
    /// The keys a client may set by default: none that widen what a session may do.
    pub const DEFAULT_ALLOW: &'static [&'static str] = &[
        "model",
        "append_system_prompt",
        "max_turns",
        "max_budget_usd",
        "include_partial_messages",
        "idle_timeout",
        "turn_timeout",
        "group",
    ];
}

impl Default for ClientPolicy {
    fn default() -> Self {
        Self {
            allow: Self::DEFAULT_ALLOW
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        }
    }
}

/// The keys of an [`Agent`] (what `[clients] allow` may name).
pub const AGENT_KEYS: &[&str] = &[
    "name",
    "cli_path",
    "model",
    "fallback_model",
    "system_prompt",
    "append_system_prompt",
    "allowed_tools",
    "disallowed_tools",
    "permission_mode",
    "cwd",
    "add_dirs",
    "max_turns",
    "max_budget_usd",
    "include_partial_messages",
    "env",
    "env_remove",
    "extra_args",
    "restart",
    "intensity",
    "period",
    "idle_timeout",
    "init_timeout",
    "turn_timeout",
    "stall_timeout",
    "group",
    "on_lost_conversation",
];

/// A config that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("config `{path}`: cannot read it: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid: a TOML syntax error, an unknown key, a value of the wrong type.
    #[error("config `{path}`, line {line}, key `{key}`: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key's path (`sessions[0].turn_timeout`), `.` for the whole file.
        key: String,
        /// The line (from 1; 0 when unknown).
        line: usize,
        /// What was wrong and what was expected.
        message: String,
    },
    /// The values do not fit together or one is out of range.
    #[error("config `{path}`, key `{key}`: {message}")]
    Value {
        /// The file (`<defaults>` for the embedded defaults).
        path: PathBuf,
        /// The key's path.
        key: String,
        /// What is wrong, and what to do.
        message: String,
    },
}

impl Config {
    /// Reads and checks the config file at `path`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`], naming the key, its line and what was expected.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and checks config text (`path` names it in errors).
    ///
    /// # Errors
    ///
    /// [`ConfigError`], naming the key, its line and what was expected.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |prefix: &str, e: serde_path_to_error::Error<toml::de::Error>| {
            let key = match e.path().to_string() {
                p if prefix.is_empty() => p,
                p if p == "." => prefix.to_owned(),
                p => format!("{prefix}.{p}"),
            };
            let inner = e.into_inner();
            ConfigError::Invalid {
                path: path.to_owned(),
                line: line_of(text, inner.span().map(|s| s.start)),
                key,
                message: inner.message().to_owned(),
            }
        };
        let mut root = toml::de::DeTable::parse(text).map_err(|e| ConfigError::Invalid {
            path: path.to_owned(),
            key: ".".into(),
            line: line_of(text, e.span().map(|s| s.start)),
            message: e.message().to_owned(),
        })?;
        // The server's own session keys are taken out of each session's table (spans and
        // all) before the rest goes to `Agent`, which refuses keys it does not know.
        let mut session_extras = Vec::new();
        if let Some(toml::de::DeValue::Array(sessions)) =
            root.get_mut().get_mut("sessions").map(|v| v.get_mut())
        {
            for (i, session) in sessions.iter_mut().enumerate() {
                let extras = take_extras(session)
                    .map(|t| serde_path_to_error::deserialize(toml::de::ValueDeserializer::from(t)))
                    .transpose()
                    .map_err(|e| invalid(&format!("sessions[{i}]"), e))?;
                session_extras.push(extras.unwrap_or_default());
            }
        }
        let defaults_extras = match root.get_mut().get_mut("defaults") {
            Some(defaults) => take_extras(defaults)
                .map(|t| serde_path_to_error::deserialize(toml::de::ValueDeserializer::from(t)))
                .transpose()
                .map_err(|e| invalid("defaults", e))?
                .unwrap_or_default(),
            None => SessionExtras::default(),
        };
        let mut config: Config = serde_path_to_error::deserialize(toml::Deserializer::from(root))
            .map_err(|e| invalid("", e))?;
        config.session_extras = session_extras;
        config.defaults_extras = defaults_extras;
        config.check(path)?;
        Ok(config)
    }

    /// The server's own keys of the session `name`: its `[[sessions]]` entry's, or the
    /// defaults' for a session that is not static.
    pub fn extras_for(&self, name: &str) -> SessionExtras {
        match self.sessions.iter().position(|a| a.name == name) {
            Some(i) => self.session_extras.get(i).cloned().unwrap_or_default(),
            None => self.defaults_extras.clone(),
        }
    }

    /// Checks what types alone cannot: names, the allow-list, the store's and fleet's keys.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Value`] naming the key.
    pub fn check(&self, path: &Path) -> Result<(), ConfigError> {
        let value = |key: String, message: String| ConfigError::Value {
            path: path.to_owned(),
            key,
            message,
        };
        for (i, agent) in self.sessions.iter().enumerate() {
            claude_supervisor::validate_name(&agent.name)
                .map_err(|e| value(format!("sessions[{i}].name"), e.to_string()))?;
            agent
                .options()
                .map_err(|e| value(format!("sessions[{i}]"), e.to_string()))?;
            if self.sessions[..i].iter().any(|a| a.name == agent.name) {
                return Err(value(
                    format!("sessions[{i}].name"),
                    format!("`{}` is named twice", agent.name),
                ));
            }
        }
        self.defaults
            .options()
            .map_err(|e| value("defaults".into(), e.to_string()))?;
        self.gateway.check(&value)?;
        let extras = self
            .session_extras
            .iter()
            .enumerate()
            .map(|(i, e)| (format!("sessions[{i}]"), e))
            .chain(std::iter::once((
                "defaults".to_owned(),
                &self.defaults_extras,
            )));
        for (table, extras) in extras {
            if let Some(group) = &extras.budget_group
                && !self.gateway.groups.contains_key(group)
            {
                return Err(value(
                    format!("{table}.budget_group"),
                    format!(
                        "`{group}` names no budget: add `[gateway.groups.{group}]` (a typo would otherwise leave the session without a group limit)"
                    ),
                ));
            }
            if extras.egress.is_none() && extras.egress_required {
                return Err(value(
                    format!("{table}.egress_required"),
                    "`egress_required` needs `egress` (the addresses the session may reach)".into(),
                ));
            }
        }
        for (i, key) in self.clients.allow.iter().enumerate() {
            if !AGENT_KEYS.contains(&key.as_str()) {
                return Err(value(
                    format!("clients.allow[{i}]"),
                    format!("`{key}` is not a session key; expected one of {AGENT_KEYS:?}"),
                ));
            }
        }
        match self.store.kind {
            StoreKind::Postgres if self.store.url.is_none() && self.store.url_env.is_none() => {
                return Err(value(
                    "store".into(),
                    "a postgres store needs `url_env` (the variable holding its URL) or `url`"
                        .into(),
                ));
            }
            StoreKind::File | StoreKind::Memory
                if self.store.url.is_some() || self.store.url_env.is_some() =>
            {
                return Err(value(
                    "store.url".into(),
                    "a URL is only for `kind = \"postgres\"`".into(),
                ));
            }
            _ => {}
        }
        if let Some(fleet) = &self.fleet {
            if self.store.kind != StoreKind::Postgres {
                return Err(value(
                    "fleet".into(),
                    "a fleet needs a store that keeps leases across machines: `[store] kind = \"postgres\"`"
                        .into(),
                ));
            }
            if fleet.node_id.is_empty() || fleet.node_id.starts_with('.') {
                return Err(value(
                    "fleet.node_id".into(),
                    "a node id must be non-empty and not start with `.`".into(),
                ));
            }
        }
        if let Some(launcher) = &self.launcher
            && launcher.prefix.first().is_none_or(|p| p.is_empty())
        {
            return Err(value(
                "launcher.prefix".into(),
                "the prefix needs at least its program (`[\"ssh\", \"host\"]`)".into(),
            ));
        }
        if self.server.max_body_bytes == 0 || self.server.max_header_bytes == 0 {
            return Err(value(
                "server".into(),
                "`max_body_bytes` and `max_header_bytes` must be greater than 0".into(),
            ));
        }
        if !self.server.listen.ip().is_loopback()
            && self.server.token_env.is_none()
            && self.server.token_file.is_none()
        {
            return Err(value(
                "server.listen".into(),
                format!(
                    "{} is not a loopback address: set `token_env` or `token_file` (a bearer token is required off loopback)",
                    self.server.listen
                ),
            ));
        }
        Ok(())
    }

    /// The data dir: `[supervisor] data_dir`, or the user's data dir.
    pub fn data_dir(&self) -> PathBuf {
        self.supervisor
            .data_dir
            .clone()
            .unwrap_or_else(default_data_dir)
    }
}

/// Takes [`SessionExtras::KEYS`] out of a session's table: `None` when it has none of them.
fn take_extras<'i>(
    session: &mut toml::Spanned<toml::de::DeValue<'i>>,
) -> Option<toml::Spanned<toml::de::DeValue<'i>>> {
    let span = session.span();
    let toml::de::DeValue::Table(table) = session.get_mut() else {
        return None;
    };
    let mut taken = toml::de::DeTable::new();
    for key in SessionExtras::KEYS {
        if let Some((k, v)) = table.remove_entry(*key) {
            taken.insert(k, v);
        }
    }
    (!taken.is_empty()).then(|| toml::Spanned::new(span, toml::de::DeValue::Table(taken)))
}

/// `~/.local/share/claude-supervisor` (the platform's user data dir), or `./.claude-supervisor`
/// where there is none.
pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .map(|d| d.join("claude-supervisor"))
        .unwrap_or_else(|| PathBuf::from(".claude-supervisor"))
}

/// The line (from 1) of byte `offset` in `text`.
fn line_of(text: &str, offset: Option<usize>) -> usize {
    match offset {
        Some(o) => text[..o.min(text.len())].matches('\n').count() + 1,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("server.toml"))
    }

    #[test]
    fn no_file_is_loopback_with_a_file_store() {
        let config = Config::default();
        assert!(config.server.listen.ip().is_loopback());
        assert_eq!(config.store.kind, StoreKind::File);
        assert!(config.sessions.is_empty());
        config.check(Path::new("<defaults>")).unwrap();
    }

    #[test]
    fn a_full_file_parses() {
        let config = parse(
            r#"
            [server]
            listen = "127.0.0.1:0"
            drain_timeout = "5s"
            [supervisor]
            max_sessions = 10
            [clients]
            allow = ["model"]
            [[sessions]]
            name = "reviewer"
            append_system_prompt = "Be brief."
            turn_timeout = "5m"
            "#,
        )
        .unwrap();
        assert_eq!(config.server.drain_timeout, Duration::from_secs(5));
        assert_eq!(config.sessions[0].name, "reviewer");
        assert_eq!(config.clients.allow, ["model"]);
    }

    #[test]
    fn an_unknown_key_names_its_path_and_line() {
        let err = parse("[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n").unwrap_err();
        let ConfigError::Invalid {
            key, line, message, ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(line, &3, "{err}");
        assert!(
            message.contains("lisen") && message.contains("expected"),
            "{err}"
        );
        assert!(key.contains("server"), "{err}");
    }

    #[test]
    fn a_wrong_type_names_the_key_inside_an_array() {
        let err =
            parse("[[sessions]]\nname = \"a\"\n[[sessions]]\nname = \"b\"\nmax_turns = \"many\"\n")
                .unwrap_err();
        let ConfigError::Invalid { key, line, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(key, "sessions[1].max_turns", "{err}");
        assert_eq!(line, &5, "{err}");
    }

    #[test]
    fn a_bad_duration_and_a_bad_name_are_refused() {
        let err = parse("[server]\ndrain_timeout = \"soon\"\n").unwrap_err();
        assert!(err.to_string().contains("server.drain_timeout"), "{err}");
        let err = parse("[[sessions]]\nname = \"../etc\"\n").unwrap_err();
        assert!(err.to_string().contains("sessions[0].name"), "{err}");
    }

    #[test]
    fn a_public_listen_address_needs_a_token() {
        let err = parse("[server]\nlisten = \"0.0.0.0:7300\"\n").unwrap_err();
        assert!(err.to_string().contains("token_env"), "{err}");
        parse("[server]\nlisten = \"0.0.0.0:7300\"\ntoken_env = \"T\"\n").unwrap();
    }

    #[test]
    fn the_allow_list_names_only_session_keys() {
        let err = parse("[clients]\nallow = [\"model\", \"root\"]\n").unwrap_err();
        assert!(err.to_string().contains("clients.allow[1]"), "{err}");
    }

    #[test]
    fn a_launcher_needs_a_program() {
        let err = parse("[launcher]\nprefix = []\n").unwrap_err();
        assert!(err.to_string().contains("launcher.prefix"), "{err}");
        let config = parse("[launcher]\nprefix = [\"ssh\", \"box\"]\nremote = true\n").unwrap();
        assert!(config.launcher.unwrap().remote);
    }

    #[test]
    fn a_fleet_needs_postgres() {
        let err = parse("[fleet]\nnode_id = \"a\"\n").unwrap_err();
        assert!(err.to_string().contains("postgres"), "{err}");
        parse(
            "[store]\nkind = \"postgres\"\nurl_env = \"DATABASE_URL\"\n[fleet]\nnode_id = \"a\"\n",
        )
        .unwrap();
    }

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn an_enabled_gateway_without_a_credential_names_the_key_and_the_variables() {
        let config = parse("[gateway]\nenabled = true\n").unwrap();
        let err = config
            .gateway
            .resolve(Path::new("server.toml"), &env_of(&[]))
            .unwrap_err();
        let ConfigError::Value { key, message, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(key, "gateway.enabled", "{err}");
        for var in [
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_AUTH_TOKEN",
            "CLAUDE_CODE_OAUTH_TOKEN",
        ] {
            assert!(message.contains(var), "{err}");
        }
        // Named but not set: the key is `credential_env`, the message names the variable.
        let config = parse("[gateway]\ncredential_env = \"MY_KEY\"\n").unwrap();
        let err = config
            .gateway
            .resolve(
                Path::new("server.toml"),
                &env_of(&[("ANTHROPIC_API_KEY", "sk-other")]),
            )
            .unwrap_err();
        assert!(err.to_string().contains("gateway.credential_env"), "{err}");
        assert!(err.to_string().contains("MY_KEY"), "{err}");
        assert!(!err.to_string().contains("sk-other"), "{err}");
    }

    #[test]
    fn the_gateway_is_on_when_a_credential_is_found_and_off_when_disabled() {
        let none = parse("").unwrap();
        assert!(
            none.gateway
                .resolve(Path::new("s"), &env_of(&[]))
                .unwrap()
                .is_none(),
            "no credential, not enabled: no gateway"
        );
        let on = none
            .gateway
            .resolve(
                Path::new("s"),
                &env_of(&[
                    ("ANTHROPIC_AUTH_TOKEN", "tok-secret-1"),
                    ("ANTHROPIC_BASE_URL", "http://127.0.0.1:9/"),
                ]),
            )
            .unwrap()
            .expect("a gateway");
        assert_eq!(on.credential_env, "ANTHROPIC_AUTH_TOKEN");
        assert_eq!(on.kind, CredentialKind::Bearer);
        assert_eq!(on.upstream_display, "http://127.0.0.1:9/");
        assert!(!format!("{on:?}").contains("tok-secret-1"), "{on:?}");
        // The API key comes first; an explicit upstream wins over the server's base URL.
        let config = parse(
            "[gateway]\nupstream = \"https://user:pw@example.com/v\"\ncredential_env = \"K\"\ncredential_kind = \"bearer\"\nmax_body_bytes = 10\n",
        )
        .unwrap();
        let g = config
            .gateway
            .resolve(Path::new("s"), &env_of(&[("K", "k-secret-2")]))
            .unwrap()
            .unwrap();
        assert_eq!(
            (g.credential_env.as_str(), g.kind),
            ("K", CredentialKind::Bearer)
        );
        assert!(!g.upstream_display.contains("pw"), "{}", g.upstream_display);
        let g = none
            .gateway
            .resolve(
                Path::new("s"),
                &env_of(&[("ANTHROPIC_API_KEY", "a"), ("ANTHROPIC_AUTH_TOKEN", "b")]),
            )
            .unwrap()
            .unwrap();
        assert_eq!(
            (g.credential_env.as_str(), g.kind),
            ("ANTHROPIC_API_KEY", CredentialKind::ApiKey)
        );
        assert_eq!(g.upstream_display, "https://api.anthropic.com/");
        let off = parse("[gateway]\nenabled = false\n").unwrap();
        assert!(
            off.gateway
                .resolve(Path::new("s"), &env_of(&[("ANTHROPIC_API_KEY", "a")]))
                .unwrap()
                .is_none()
        );
        // Off with a named variable: the CLIs get it themselves, in the variable they read.
        assert!(
            off.gateway
                .direct_credential(Path::new("s"), &env_of(&[("ANTHROPIC_API_KEY", "a")]))
                .unwrap()
                .is_none()
        );
        let off = parse(
            "[gateway]\nenabled = false\ncredential_env = \"K\"\ncredential_kind = \"bearer\"\n",
        )
        .unwrap();
        let direct = off
            .gateway
            .direct_credential(Path::new("s"), &env_of(&[("K", "k-secret-3")]))
            .unwrap()
            .unwrap();
        assert_eq!(
            (direct.cli_var, direct.secret.as_str()),
            ("ANTHROPIC_AUTH_TOKEN", "k-secret-3")
        );
        assert!(!format!("{direct:?}").contains("k-secret-3"));
        let err = off
            .gateway
            .direct_credential(Path::new("s"), &env_of(&[]))
            .unwrap_err();
        assert!(err.to_string().contains("gateway.credential_env"), "{err}");
    }

    #[test]
    fn a_bad_egress_address_names_its_key_and_line() {
        let err = parse(
            "[[sessions]]\nname = \"a\"\n[[sessions]]\nname = \"b\"\negress = [\"127.0.0.1:3128\", \"proxy:80\"]\n",
        )
        .unwrap_err();
        let ConfigError::Invalid { key, line, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(key, "sessions[1].egress[1]", "{err}");
        assert_eq!(line, &5, "{err}");
        let err = parse("[defaults]\nmodel = \"m\"\negress = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(err.to_string().contains("defaults.egress"), "{err}");
        assert!(err.to_string().contains("line 3"), "{err}");
        // An unknown key next to them is still refused by the agent's own table.
        let err = parse("[[sessions]]\nname = \"a\"\negress = []\negres = 1\n").unwrap_err();
        assert!(err.to_string().contains("egres"), "{err}");
    }

    #[test]
    fn egress_and_budget_groups_parse_check_and_serialize_back() {
        let text = r#"
            [gateway.session_budget]
            requests_per_minute = 30
            [gateway.groups.ci]
            tokens = 1000
            tokens_period = "1h"
            dollars = 2.5
            dollars_period = "1day"
            [defaults]
            egress = ["127.0.0.1:3128"]
            [[sessions]]
            name = "a"
            turn_timeout = "5m"
            egress = ["127.0.0.1:3128", "[::1]:8080"]
            egress_required = true
            budget_group = "ci"
            [[sessions]]
            name = "b"
            "#;
        let config = parse(text).unwrap();
        let a = config.extras_for("a");
        assert_eq!(a.egress.as_ref().unwrap().len(), 2);
        assert!(a.egress_required);
        assert_eq!(a.budget_group.as_deref(), Some("ci"));
        let policy = a.egress_policy().unwrap();
        assert!(policy.is_required());
        assert_eq!(policy.allowed().len(), 2);
        assert_eq!(config.extras_for("b"), SessionExtras::default());
        assert_eq!(
            config.extras_for("from-http").egress,
            Some(vec!["127.0.0.1:3128".parse().unwrap()])
        );
        assert_eq!(
            config.sessions[0].turn_timeout,
            Some(Duration::from_secs(300))
        );
        assert!(!config.gateway.groups["ci"].budget().is_unlimited());
        // Written back as TOML, it reads the same.
        let again = parse(&toml::to_string(&config).unwrap()).unwrap();
        assert_eq!(again.session_extras, config.session_extras);
        assert_eq!(again.defaults_extras, config.defaults_extras);
        assert_eq!(again.gateway, config.gateway);
    }

    #[test]
    fn budgets_and_session_keys_that_do_not_fit_are_refused() {
        for (text, key) in [
            (
                "[[sessions]]\nname = \"a\"\nbudget_group = \"nope\"\n",
                "sessions[0].budget_group",
            ),
            (
                "[defaults]\negress_required = true\n",
                "defaults.egress_required",
            ),
            (
                "[gateway.session_budget]\ntokens = 5\n",
                "gateway.session_budget.tokens",
            ),
            (
                "[gateway.groups.x]\ndollars_period = \"1h\"\n",
                "gateway.groups.x.dollars_period",
            ),
            (
                "[gateway.groups.x]\ndollars = -1.0\ndollars_period = \"1h\"\n",
                "gateway.groups.x.dollars",
            ),
            (
                "[gateway.session_budget]\nrequests_per_minute = 1\nrequests = 2\nrequests_period = \"1s\"\n",
                "gateway.session_budget.requests_per_minute",
            ),
            (
                "[gateway]\nupstream = \"api.anthropic.com\"\n",
                "gateway.upstream",
            ),
            (
                "[gateway]\ncredential_kind = \"bearer\"\n",
                "gateway.credential_kind",
            ),
            (
                "[gateway]\nheader_read_timeout = \"0s\"\n",
                "gateway.header_read_timeout",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.to_string().contains(key), "{text}: {err}");
        }
    }
}
