//! `tessera admin ...`: bootstrap and repair, directly on the server's
//! database (works whether or not the server is running).

use crate::fail::{Failure, Result};
use crate::server::{Database, ServerArgs, ServerConfig};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use tessera_driver::SystemClock;
use tessera_store::Accounts;

#[derive(Subcommand)]
pub enum AdminCmd {
    /// Create a user and print its first API key (shown once).
    CreateUser(CreateUserArgs),
    /// Create a worker token for `tessera worker --token` (printed once;
    /// only its hash is kept, in `<data dir>/worker-tokens`).
    CreateWorkerToken(WorkerTokenArgs),
    /// Revoke a worker token by name; its workers are refused from then on.
    RevokeWorkerToken(WorkerTokenArgs),
}

#[derive(Args)]
pub struct WorkerTokenArgs {
    /// The token's name, as workers' nodes list it (one per machine or
    /// rack, so one can be revoked alone).
    name: String,
    #[command(flatten)]
    server: StoreArgs,
}

#[derive(Args)]
pub struct CreateUserArgs {
    /// The user's name (letters, digits, `-`, `_`; it logs in with it).
    name: String,
    /// Make the user an administrator.
    #[arg(long)]
    admin: bool,
    /// Also create this project with the user as its owner.
    #[arg(long)]
    project: Option<String>,
    #[command(flatten)]
    server: StoreArgs,
}

/// Where the server keeps its database: the server's own flags for it, and
/// only those (the rest of `tessera server`'s flags mean nothing here).
#[derive(Args)]
pub struct StoreArgs {
    /// The server's data directory [default: as `tessera server`'s].
    #[arg(long, env = "TESSERA_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The server's database URL, `sqlite:PATH` or
    /// `postgres://user:pass@host/db` [default: SQLite in the data directory].
    #[arg(long, env = "TESSERA_DATABASE")]
    database: Option<String>,
    /// The server's TOML configuration file, read for the two above.
    #[arg(long, env = "TESSERA_CONFIG")]
    config: Option<PathBuf>,
}

impl StoreArgs {
    /// The server's configuration these name.
    fn resolve(&self) -> Result<ServerConfig> {
        ServerConfig::resolve(&ServerArgs {
            data_dir: self.data_dir.clone(),
            database: self.database.clone(),
            config: self.config.clone(),
            ..ServerArgs::default()
        })
    }
}

pub fn run(cmd: AdminCmd) -> Result<()> {
    match cmd {
        AdminCmd::CreateUser(a) => create_user(a),
        AdminCmd::CreateWorkerToken(a) => {
            let dir = data_dir(&a.server)?;
            let token = tessera_api::create_worker_token(&dir, &a.name).map_err(Failure::input)?;
            eprintln!("created worker token {}; shown once:", a.name);
            println!("{token}");
            Ok(())
        }
        AdminCmd::RevokeWorkerToken(a) => {
            let dir = data_dir(&a.server)?;
            if tessera_api::revoke_worker_token(&dir, &a.name).map_err(Failure::env)? {
                eprintln!("revoked worker token {}", a.name);
                Ok(())
            } else {
                Err(Failure::input(format!(
                    "no worker token named {}; see {}",
                    a.name,
                    tessera_api::token_file(&dir).display()
                )))
            }
        }
    }
}

/// The server's data directory, created if missing.
fn data_dir(args: &StoreArgs) -> Result<PathBuf> {
    let config = args.resolve()?;
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| Failure::env(format!("cannot create {}: {e}", config.data_dir.display())))?;
    Ok(config.data_dir)
}

fn open(db: &Database) -> Result<Box<dyn Accounts>> {
    Ok(match db {
        Database::Sqlite(path) => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    Failure::env(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
            if path.exists() {
                // The server may be running: don't take its scheduler lock.
                Box::new(tessera_store::SqliteStore::open_secondary(path)?)
            } else {
                // First use: create the database and its schema.
                Box::new(tessera_store::SqliteStore::open(path)?)
            }
        }
        Database::Postgres(url) => Box::new(tessera_store::PostgresStore::connect_secondary(url)?),
    })
}

fn create_user(args: CreateUserArgs) -> Result<()> {
    tessera_api::check_name("user", &args.name).map_err(Failure::input)?;
    if let Some(project) = &args.project {
        tessera_api::check_name("project", project).map_err(Failure::input)?;
    }
    let config = args.server.resolve()?;
    let mut store = open(&config.database)?;
    let now = SystemClock::now();
    let user = store
        .create_user(&args.name, args.admin, now)
        .map_err(|e| Failure::input(e.to_string()))?;
    let (secret, prefix, hash) = tessera_api::new_api_key();
    store.create_key(user.id, "first key", &prefix, &hash, now)?;
    if let Some(project) = &args.project {
        store
            .create_project(project, user.id, now)
            .map_err(|e| Failure::input(e.to_string()))?;
    }
    let what = if args.admin { "administrator" } else { "user" };
    eprintln!(
        "created {what} {} (id {}); its API key, shown once:",
        user.name, user.id
    );
    println!("{secret}");
    Ok(())
}
