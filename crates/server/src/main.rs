//! `claude-supervisor`: the agent server and its operator command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use claude_supervisor::Agent;
use claude_supervisor_server::client::{self, Remote};
use claude_supervisor_server::config::{Config, LogFormat};
use claude_supervisor_server::{doctor, install, telemetry};

/// A supervised runtime for Claude Code agents: named sessions, each a Claude Code CLI under
/// OTP-style supervision, behind an HTTP API.
#[derive(Parser)]
#[command(name = "claude-supervisor", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the server: the supervision tree from a TOML config behind the HTTP API. SIGTERM or
    /// Ctrl-C drains it (running turns finish, up to `drain_timeout`) and stops every CLI.
    Serve {
        /// The config file (default: the embedded defaults — loopback 127.0.0.1:7300, a file
        /// store under the data dir, no static sessions).
        #[arg(long, short, env = "CLAUDE_SUPERVISOR_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Runs one prompt: on this machine in a throw-away session (default), or as a turn of a
    /// named session on a running server (`--server` and `--session`). Streams the text as it
    /// arrives; exits non-zero if the turn fails.
    Query(QueryArgs),
    /// Lists a running server's sessions (in a fleet, every node's, with owners).
    Sessions(RemoteArgs),
    /// A running server's health report.
    Health(RemoteArgs),
    /// Checks this machine: the CLI and its version, credentials (named, never shown), the
    /// config, the data dir and the store. Exits non-zero if anything fails.
    Doctor {
        /// The config file to check (default: the embedded defaults).
        #[arg(long, short, env = "CLAUDE_SUPERVISOR_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Installs the Claude Code CLI from the npm registry into the data dir (where the server
    /// finds it). Needs Node.js 20+ with npm.
    InstallCli {
        /// The version (default: the pinned, tested one).
        #[arg(long)]
        version: Option<String>,
        /// The data dir (default: the config's, or the user's data dir).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The config whose data dir to use.
        #[arg(long, short, env = "CLAUDE_SUPERVISOR_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Prints the HTTP API's OpenAPI document (JSON).
    Openapi,
}

#[derive(Args)]
struct RemoteArgs {
    /// The server's URL.
    #[arg(
        long,
        default_value = "http://127.0.0.1:7300",
        env = "CLAUDE_SUPERVISOR_URL"
    )]
    server: String,
    /// The environment variable holding the server's bearer token.
    #[arg(long, default_value = "CLAUDE_SUPERVISOR_TOKEN")]
    token_env: String,
    /// JSON instead of a table.
    #[arg(long)]
    json: bool,
}

impl RemoteArgs {
    fn remote(&self) -> Remote {
        Remote {
            url: self.server.clone(),
            token: std::env::var(&self.token_env)
                .ok()
                .filter(|t| !t.is_empty()),
        }
    }
}

#[derive(Args)]
struct QueryArgs {
    /// The prompt.
    prompt: String,
    /// A running server to ask (with `--session`); default: a one-shot on this machine.
    #[arg(long, env = "CLAUDE_SUPERVISOR_URL", requires = "session")]
    server: Option<String>,
    /// The server's session to ask.
    #[arg(long, requires = "server")]
    session: Option<String>,
    /// The environment variable holding the server's bearer token.
    #[arg(long, default_value = "CLAUDE_SUPERVISOR_TOKEN")]
    token_env: String,
    /// `--model` (one-shot only).
    #[arg(long)]
    model: Option<String>,
    /// `--append-system-prompt` (one-shot only).
    #[arg(long)]
    append_system_prompt: Option<String>,
    /// `--max-turns` (one-shot only).
    #[arg(long)]
    max_turns: Option<u32>,
    /// The working directory (one-shot only).
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// The CLI to run (one-shot only; default: discovery).
    #[arg(long)]
    cli_path: Option<PathBuf>,
    /// The frames (or server events) as JSON lines instead of text.
    #[arg(long)]
    json: bool,
}

fn init_logs(default_level: &str, format: LogFormat) {
    // Only `serve` exports traces; the other commands log to stderr (the guard holds nothing).
    if let Err(e) = telemetry::init(default_level, format, None) {
        eprintln!("claude-supervisor: logging: {e}");
    }
}

fn load(config: Option<&Path>) -> Result<Config, claude_supervisor_server::ConfigError> {
    match config {
        Some(path) => Config::load(path),
        None => Ok(Config::default()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("claude-supervisor: error: {e}");
            let mut source = std::error::Error::source(&*e);
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match command {
        Command::Serve { config } => {
            let loaded = load(config.as_deref())?;
            let _telemetry = telemetry::init(
                "info",
                loaded.server.log_format,
                loaded.server.otlp_endpoint.as_deref(),
            )?;
            let path = config.unwrap_or_else(|| PathBuf::from("<defaults>"));
            let server = claude_supervisor_server::start(loaded, &path).await?;
            eprintln!(
                "claude-supervisor: serving on http://{}",
                server.local_addr()
            );
            server.run_until_signalled().await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Query(args) => {
            init_logs("warn", LogFormat::Text);
            let mut out = std::io::stdout().lock();
            match (&args.server, &args.session) {
                (Some(url), Some(session)) => {
                    let remote = Remote {
                        url: url.clone(),
                        token: std::env::var(&args.token_env)
                            .ok()
                            .filter(|t| !t.is_empty()),
                    };
                    client::query_remote(&remote, session, &args.prompt, args.json, &mut out)
                        .await?;
                }
                _ => {
                    let mut agent = Agent::new("");
                    agent.model = args.model;
                    agent.append_system_prompt = args.append_system_prompt;
                    agent.max_turns = args.max_turns;
                    agent.cwd = args.cwd;
                    agent.cli_path = args.cli_path;
                    client::query_local(&args.prompt, &agent, args.json, &mut out).await?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Sessions(args) => {
            init_logs("warn", LogFormat::Text);
            client::sessions(&args.remote(), args.json, &mut std::io::stdout().lock()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Health(args) => {
            init_logs("warn", LogFormat::Text);
            client::health(&args.remote(), args.json, &mut std::io::stdout().lock()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Doctor { config } => {
            init_logs("warn", LogFormat::Text);
            let checks = doctor::run(load(config.as_deref()), config.as_deref()).await;
            let ok = doctor::report(&checks, &mut std::io::stdout().lock())?;
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::InstallCli {
            version,
            data_dir,
            config,
        } => {
            init_logs("warn", LogFormat::Text);
            let dir = match data_dir {
                Some(d) => d,
                None => load(config.as_deref())?.data_dir(),
            };
            let version = version.unwrap_or_else(|| claude_protocol::PINNED_VERSION.to_string());
            eprintln!(
                "claude-supervisor: installing {}@{version} into {}",
                install::NPM_PACKAGE,
                dir.display()
            );
            let binary = install::install_cli(&dir, &version).await?;
            println!("{}", binary.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Openapi => {
            println!(
                "{}",
                serde_json::to_string_pretty(&claude_supervisor_server::openapi())?
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
