//! The command line: `serve` (the default) and the operations subcommands.
use std::{io::IsTerminal, process::ExitCode};

use sea_orm::ActiveEnum;
use secrecy::SecretString;

use app::domain::{Email, Password, Role, Subdomain};
use app::site::Origin;
use app::ssr::entities::tenant_exports::ExportStatus;
use app::ssr::tenancy::{
    backups::restore::RestoreAs,
    lifecycle::offboarding::{Deleted, Deletion},
    lifecycle::provisioning::NewTenant,
    request::directory::{self, TenantInfo},
    schema::waves::{self, Canary},
};
use clap::{Parser, Subcommand};

use crate::{
    config::Settings,
    startup::{build_services, Application},
    telemetry,
};

#[derive(Parser, Debug)]
#[command(
    name = "enclave",
    version,
    about = "Enclave: a database for every company"
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// How `migrate` runs.
#[derive(clap::Args, Debug, Default)]
pub struct MigrateArgs {
    /// Companies migrated at once on each database server [default: 8, at
    /// most the connection budget].
    #[arg(long, visible_alias = "concurrency")]
    parallel: Option<usize>,
    /// Only this company.
    #[arg(long)]
    tenant: Option<String>,
    /// Connect to each company and list its pending migrations; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the waves and the migrations each company would get (from what
    /// the registry records); change nothing.
    #[arg(long, conflicts_with = "dry_run")]
    plan: bool,
    /// Migrate in waves, first these companies: a number (the n smallest)
    /// or a comma-separated list of subdomains [default with waves: 1].
    #[arg(long)]
    canary: Option<Canary>,
    /// Each wave after the canary is this many times the one before (at
    /// least 1) [default with waves: 2].
    #[arg(long, value_parser = waves::parse_growth)]
    growth: Option<f64>,
    /// Stop after a wave in which more than this share of companies failed
    /// (0 to 1) [default with waves: 0, the first failure].
    #[arg(long, value_parser = waves::parse_abort_rate)]
    abort_rate: Option<f64>,
    /// Continue the stopped run where it stopped, with its own waves and
    /// abort rate; companies it finished are skipped, failed ones retried.
    #[arg(long, conflicts_with_all = ["tenant", "dry_run", "plan", "canary", "growth", "abort_rate"])]
    resume: bool,
}

#[derive(Subcommand, Debug)]
pub enum MigrateCommand {
    /// Which company is on which version, the last run, and every failure.
    Status,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the web app (the default).
    Serve,
    /// Migrate the registry, then every company's database (paused ones too),
    /// all at once or in waves.
    #[command(args_conflicts_with_subcommands = true)]
    Migrate {
        #[command(subcommand)]
        what: Option<MigrateCommand>,
        #[command(flatten)]
        args: MigrateArgs,
    },
    /// Manage companies (tenants).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage platform admins.
    #[command(subcommand)]
    Superadmin(SuperadminCommand),
    /// The key that encrypts stored database credentials.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// The PostgreSQL servers new companies are placed on.
    #[command(subcommand)]
    Dbserver(DbserverCommand),
    /// Backups: pgBackRest for PostgreSQL servers, snapshots for SQLite.
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Deletion receipts.
    #[command(subcommand)]
    Receipt(ReceiptCommand),
}

#[derive(Subcommand, Debug)]
pub enum ReceiptCommand {
    /// Check that a deletion receipt was signed by this installation (its
    /// ENCLAVE_SECRET_KEY) and not changed since.
    Verify { file: std::path::PathBuf },
}

#[derive(Subcommand, Debug)]
pub enum BackupCommand {
    /// Print the PostgreSQL settings and the pgBackRest stanza a server
    /// needs (`default` is ENCLAVE_TENANT_DB_URL's); with --write, set them
    /// and add the stanza to ENCLAVE_PGBACKREST_CONFIG.
    Setup {
        server: String,
        /// Set the settings (ALTER SYSTEM) and write the stanza; once
        /// archiving is on, create the stanza and check it.
        #[arg(long)]
        write: bool,
    },
    /// Take a backup now: of one server, or of every one (SQLite: a
    /// snapshot of every company).
    Run { server: Option<String> },
    /// Each server's backups, and the earliest moment each company can be
    /// restored to.
    List {
        /// One JSON array instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum DbserverCommand {
    /// Add a server: new companies go to the active server with the most
    /// free capacity.
    Add {
        /// 1–63 of a-z, 0-9 and '-'; `default` is ENCLAVE_TENANT_DB_URL's.
        #[arg(long)]
        name: String,
        /// Read the administrator's URL (CREATEDB and CREATEROLE) from the
        /// first line of standard input; it is stored encrypted.
        #[arg(long, required = true)]
        admin_url_stdin: bool,
        /// How many companies it should hold [default: no limit].
        #[arg(long)]
        capacity: Option<u32>,
    },
    /// List the servers: companies, connections open to company databases
    /// (every instance's, as the server counts them), capacity, state.
    List {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Place no new company on a server (its companies stay); `default`,
    /// ENCLAVE_TENANT_DB_URL's, too.
    Drain { name: String },
    /// Place new companies on a drained server again.
    Activate { name: String },
    /// Forget a server that holds no company.
    Remove { name: String },
}

#[derive(Subcommand, Debug)]
pub enum TotpCommand {
    /// Turn it on (or start over with a new secret): prints the otpauth://
    /// URL and the secret for an authenticator app, once.
    Enable { email: String },
    /// Turn it off.
    Disable { email: String },
}

#[derive(Subcommand, Debug)]
pub enum SecretCommand {
    /// Seal every stored credential again under ENCLAVE_SECRET_KEY, opening
    /// old ones with ENCLAVE_SECRET_KEY_PREVIOUS. Safe to run again after a
    /// crash; exits 1 while any credential opens with neither key.
    Rotate,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Make a platform API token; it is printed once and stored hashed.
    Create {
        /// What the token is for.
        #[arg(long, default_value = "api")]
        label: String,
        /// The token stops working this many days from now [default: never].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36_500))]
        expires_in_days: Option<u32>,
    },
    /// List tokens: id, label, created, last used, expiry (never the token).
    List,
    /// Revoke a token by the id `token list` shows; it stops working at once.
    Revoke { id: String },
}

#[derive(Subcommand, Debug)]
pub enum SuperadminCommand {
    /// Platform API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Create a platform admin, who signs in at `/admin` on the base domain.
    Create {
        #[arg(long)]
        email: String,
        /// Read the password from the first line of standard input instead
        /// of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List platform admins.
    List,
    /// A second factor (TOTP) for a platform admin's sign-in.
    #[command(subcommand)]
    Totp(TotpCommand),
    /// Remove a platform admin; their sessions end.
    Remove { email: String },
    /// Set a platform admin's password; all their sessions end.
    Password {
        email: String,
        /// Read the password from the first line of standard input instead
        /// of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// Create a company: its database, schema and admin user.
    Create {
        /// Company name (1–100 characters).
        #[arg(long, allow_hyphen_values = true)]
        name: String,
        /// Subdomain: 3–63 of a-z, 0-9 and '-'.
        #[arg(long, allow_hyphen_values = true)]
        subdomain: String,
        /// The first admin's email.
        #[arg(long)]
        admin_email: String,
        /// Read the admin's password from the first line of standard input
        /// instead of prompting.
        #[arg(long)]
        admin_password_stdin: bool,
    },
    /// Add a user to a company with a password (for automation; people
    /// are invited from the Users page instead).
    AddUser {
        subdomain: String,
        #[arg(long)]
        email: String,
        /// `member` or `admin`.
        #[arg(long, default_value = "member")]
        role: String,
        /// Read the password from the first line of standard input instead
        /// of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List companies.
    List {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one company.
    Show { subdomain: String },
    /// Stop serving a company (its data stays).
    Pause { subdomain: String },
    /// Serve a paused company again.
    Resume { subdomain: String },
    /// Move a company's database to another server (see `dbserver`): copy,
    /// verify, switch, clean up. Its writes pause from the copy to the switch.
    Move {
        subdomain: String,
        /// The server's name (`default` is ENCLAVE_TENANT_DB_URL's).
        #[arg(long)]
        to: String,
    },
    /// Put a company back to a moment from the backups (PostgreSQL: any
    /// second they cover; SQLite: the latest snapshot at or before it), in
    /// place or beside it as a new paused company.
    Restore {
        subdomain: String,
        /// The moment, RFC 3339 (`2026-12-06T14:01:00Z`).
        #[arg(long, required_unless_present = "undo")]
        to: Option<String>,
        /// Switch the company to the restored data (the data before is kept
        /// for ENCLAVE_RESTORE_KEEP_DAYS).
        #[arg(long, conflicts_with_all = ["as_subdomain", "undo"])]
        in_place: bool,
        /// Open the restored data beside it, as a new paused company.
        #[arg(long = "as", value_name = "NEW_SUBDOMAIN", conflicts_with = "undo")]
        as_subdomain: Option<String>,
        /// Bring back the data the last restore in place replaced.
        #[arg(long, conflicts_with = "to")]
        undo: bool,
    },
    /// Write a company's data to a ZIP archive: each table as CSV and as
    /// JSON Lines, and manifest.json (schema, rows and SHA-256 of each file).
    Export {
        subdomain: String,
        /// Where the archive goes (written beside it, then renamed).
        #[arg(short = 'o', long)]
        output: std::path::PathBuf,
        /// Keep password hashes, token digests and sessions: for moving the
        /// company to another installation. Keep such an archive secret.
        #[arg(long)]
        with_credentials: bool,
    },
    /// Create a company from an archive made by `tenant export`, on this
    /// installation's backend (SQLite or PostgreSQL).
    Import {
        archive: std::path::PathBuf,
        /// The new company's subdomain.
        #[arg(long)]
        subdomain: String,
        /// The database server (see `dbserver list`); default: where new
        /// companies go.
        #[arg(long)]
        server: Option<String>,
    },
    /// Delete a company: it is closed at once and purged (database, role,
    /// files, records) once ENCLAVE_DELETION_GRACE_DAYS are over; until
    /// then `tenant undelete` brings it back.
    Delete {
        subdomain: String,
        /// Required: once purged, nothing can bring it back.
        #[arg(long)]
        yes: bool,
        /// Purge now, without the grace period.
        #[arg(long)]
        now: bool,
        /// With --now: write the deletion receipt here too (it is always
        /// kept in <data dir>/receipts/).
        #[arg(long, requires = "now")]
        receipt: Option<std::path::PathBuf>,
    },
    /// Bring back a company scheduled for deletion, as it was.
    Undelete { subdomain: String },
    /// Give a company a new subdomain: the old one redirects for
    /// ENCLAVE_RENAME_REDIRECT_DAYS and is no one else's for
    /// ENCLAVE_RENAME_RESERVED_DAYS.
    Rename {
        subdomain: String,
        /// The new subdomain.
        #[arg(long)]
        to: String,
    },
    /// A company's own domains (served once a TXT record proves them).
    #[command(subcommand)]
    Domain(DomainCommand),
}

#[derive(Subcommand, Debug)]
pub enum DomainCommand {
    /// Add a domain; prints the DNS records to create.
    Add { subdomain: String, domain: String },
    /// A company's domains and their state.
    List {
        subdomain: String,
        #[arg(long)]
        json: bool,
    },
    /// Look the domain's TXT record up now.
    Verify { subdomain: String, domain: String },
    /// Stop serving a domain and forget it.
    Remove { subdomain: String, domain: String },
    /// Make a verified domain the company's primary address (links in
    /// mail), or with --none the subdomain again.
    Primary {
        subdomain: String,
        #[arg(required_unless_present = "none")]
        domain: Option<String>,
        /// The subdomain answers 308 to the domain.
        #[arg(long, conflicts_with = "none")]
        redirect: bool,
        #[arg(long)]
        none: bool,
    },
}

type CliResult = Result<(), Box<dyn std::error::Error>>;

pub fn run(cli: Cli) -> ExitCode {
    let _log_guard = telemetry::init(cli.settings.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: CliResult = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(cli.settings).await,
            Command::Migrate {
                what: Some(MigrateCommand::Status),
                ..
            } => migrate_status(cli.settings).await,
            Command::Migrate { what: None, args } => migrate(cli.settings, args).await,
            Command::Tenant(cmd) => tenant(cli.settings, cmd).await,
            Command::Superadmin(cmd) => superadmin(cli.settings, cmd).await,
            Command::Secret(SecretCommand::Rotate) => rotate(cli.settings).await,
            Command::Dbserver(cmd) => dbserver(cli.settings, cmd).await,
            Command::Backup(cmd) => backup(cli.settings, cmd).await,
            Command::Receipt(ReceiptCommand::Verify { file }) => {
                verify_receipt(cli.settings, &file).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> CliResult {
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    Ok(())
}

async fn dbserver(settings: Settings, cmd: DbserverCommand) -> CliResult {
    let admin_url = match &cmd {
        DbserverCommand::Add { .. } => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            Some(SecretString::from(line.trim().to_owned()))
        }
        _ => None,
    };
    let services = build_services(&settings).await?;
    let fleet = services.provisioner.fleet();
    match cmd {
        DbserverCommand::Add { name, capacity, .. } => {
            let url = admin_url.expect("read above");
            for warning in fleet.add(&name, &url, capacity).await? {
                eprintln!("warning: {warning}");
            }
            println!("added {name}");
        }
        DbserverCommand::List { json } => {
            let mut servers = fleet.list().await?;
            fleet.count_connections(&mut servers).await;
            if json {
                println!("{}", serde_json::to_string_pretty(&servers)?);
            } else {
                println!(
                    "{:<20} {:<28} {:>9} {:>6} {:>9} state",
                    "name", "address", "companies", "open", "capacity"
                );
                for s in &servers {
                    let capacity = s.capacity.map_or("-".to_owned(), |c| c.to_string());
                    let open = s.open_connections.map_or("?".to_owned(), |n| n.to_string());
                    println!(
                        "{:<20} {:<28} {:>9} {:>6} {:>9} {}",
                        s.name, s.address, s.companies, open, capacity, s.state
                    );
                }
            }
        }
        DbserverCommand::Drain { name } => {
            fleet.drain(&name).await?;
            println!("{name} takes no new companies");
        }
        DbserverCommand::Activate { name } => {
            fleet.activate(&name).await?;
            println!("{name} takes new companies");
        }
        DbserverCommand::Remove { name } => {
            fleet.remove(&name).await?;
            println!("removed {name}");
        }
    }
    Ok(())
}

async fn backup(settings: Settings, cmd: BackupCommand) -> CliResult {
    let services = build_services(&settings).await?;
    match cmd {
        BackupCommand::Setup { server, write } => {
            let setup = services.backup_setup(&server, write).await?;
            let verb = if setup.written { "set" } else { "needs" };
            println!("PostgreSQL server '{}' {verb}:", setup.server);
            for (k, v) in &setup.settings {
                println!("  {k} = '{v}'");
            }
            if setup.needs_restart {
                println!("  (archive_mode and wal_level take effect when PostgreSQL restarts)");
            }
            let file = settings
                .pgbackrest_config
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "/etc/pgbackrest/pgbackrest.conf".into());
            let verb = if setup.written { "has" } else { "needs" };
            println!("\n{file} {verb}:\n{}", setup.stanza);
            match (setup.written, setup.checked) {
                (_, true) => println!(
                    "stanza '{}' created and checked: run `server backup run {}`",
                    setup.server, setup.server
                ),
                (true, false) => println!(
                    "restart PostgreSQL, then run `server backup run {}`",
                    setup.server
                ),
                (false, _) => println!("run again with --write to set them, or set them by hand"),
            }
        }
        BackupCommand::Run { server } => {
            for line in services.backup_run(server.as_deref()).await? {
                println!("{line}");
            }
        }
        BackupCommand::List { json } => {
            let list = services.backup_list().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            for s in list {
                println!("{}: {} backups", s.server, s.backups.len());
                for b in &s.backups {
                    println!(
                        "  {:<26} {:<4} {} to {}  {} MB",
                        b.label,
                        b.kind,
                        b.started.to_rfc3339(),
                        b.stopped.to_rfc3339(),
                        b.size / 1_000_000
                    );
                }
                for (sub, earliest) in &s.companies {
                    match earliest {
                        Some(at) => println!("  {sub}: back to {}", at.to_rfc3339()),
                        None => println!("  {sub}: in no backup yet"),
                    }
                }
            }
        }
    }
    Ok(())
}

async fn tenant(settings: Settings, cmd: TenantCommand) -> CliResult {
    // Validate before touching any database.
    let mut new_user = None;
    let new = match &cmd {
        TenantCommand::Create {
            name,
            subdomain,
            admin_email,
            admin_password_stdin,
        } => {
            // Everything but the password is checked before asking for it.
            NewTenant::parse(name, subdomain, admin_email, "a placeholder password")?;
            let password = read_password(*admin_password_stdin, "Admin password")?;
            Some(NewTenant::parse(name, subdomain, admin_email, &password)?)
        }
        TenantCommand::AddUser {
            subdomain,
            email,
            role,
            password_stdin,
        } => {
            let parsed = (
                Subdomain::parse(subdomain)?,
                Email::parse(email)?,
                Role::parse(role)?,
            );
            let password = Password::parse(&read_password(*password_stdin, "Password")?)?;
            new_user = Some((parsed, password));
            None
        }
        _ => None,
    };
    let services = build_services(&settings).await?;
    match cmd {
        TenantCommand::Create { .. } => {
            let new = new.expect("parsed above");
            let started = std::time::Instant::now();
            let t = services.create_tenant(new).await?;
            println!(
                "created {} ({}) in {} ms: {}",
                t.subdomain,
                t.id,
                started.elapsed().as_millis(),
                tenant_url(&settings, &t.subdomain)
            );
        }
        TenantCommand::List { json } => {
            let tenants = directory::list(&services.registry).await?;
            if json {
                let rows: Vec<_> = tenants.iter().map(TenantInfo::from).collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!(
                    "{:<24} {:<13} {:<32} {:<16} {:<26} created",
                    "subdomain", "status", "name", "server", "schema"
                );
                for t in &tenants {
                    println!(
                        "{:<24} {:<13} {:<32} {:<16} {:<26} {}",
                        t.subdomain,
                        t.status.to_value(),
                        t.name,
                        t.db_server.as_deref().unwrap_or("default"),
                        t.schema_version.as_deref().unwrap_or("-"),
                        t.created_at.format("%Y-%m-%d %H:%M")
                    );
                }
            }
        }
        TenantCommand::AddUser { .. } => {
            let ((sub, email, role), password) = new_user.expect("parsed above");
            let user = services
                .add_user_with_password(&sub, "cli", &email, role, password)
                .await?;
            println!("added {} to {sub} as {}", user.email, user.role.as_str());
        }
        TenantCommand::Pause { subdomain } => {
            let t = services
                .set_paused(&Subdomain::parse(&subdomain)?, true)
                .await?;
            println!("paused {}", t.subdomain);
        }
        TenantCommand::Resume { subdomain } => {
            let t = services
                .set_paused(&Subdomain::parse(&subdomain)?, false)
                .await?;
            println!("resumed {}", t.subdomain);
        }
        TenantCommand::Move { subdomain, to } => {
            let moved = services
                .move_tenant(&Subdomain::parse(&subdomain)?, &to)
                .await?;
            println!(
                "moved {subdomain} from {} to {}: {} rows in {} tables, writes paused {:.1} s, {:.1} s in all",
                moved.from,
                moved.to,
                moved.rows,
                moved.tables,
                moved.paused.as_secs_f64(),
                moved.took.as_secs_f64()
            );
        }
        TenantCommand::Restore {
            subdomain,
            to,
            in_place,
            as_subdomain,
            undo,
        } => {
            let sub = Subdomain::parse(&subdomain)?;
            if undo {
                services.undo_restore(&sub).await?;
                println!("{subdomain} has its data from before the restore again");
                return Ok(());
            }
            let how = match (in_place, as_subdomain) {
                (true, None) => RestoreAs::InPlace,
                (false, Some(new)) => RestoreAs::Beside(Subdomain::parse(&new)?),
                _ => {
                    return Err(
                        "say where the restored data goes: --in-place, or --as <new subdomain>"
                            .into(),
                    )
                }
            };
            let to = to.unwrap_or_default();
            let at = chrono::DateTime::parse_from_rfc3339(&to)
                .map_err(|_| {
                    format!("'{to}' is not an RFC 3339 moment (e.g. 2026-12-06T14:01:00Z)")
                })?
                .with_timezone(&chrono::Utc);
            let done = services.restore_tenant(&sub, at, how).await?;
            let from = done
                .snapshot
                .map(|s| format!(" (its snapshot of {})", s.to_rfc3339()))
                .unwrap_or_default();
            match done.kept_until {
                Some(until) => println!(
                    "restored {subdomain} to {}{from} in place: {} rows, writes paused {:.1} s, {:.1} s in all; the data before is kept until {} (`tenant restore {subdomain} --undo`)",
                    done.to.to_rfc3339(),
                    done.rows,
                    done.paused.as_secs_f64(),
                    done.took.as_secs_f64(),
                    until.to_rfc3339()
                ),
                None => println!(
                    "opened {subdomain} as it was at {}{from} beside it, as {} (paused): {} rows in {:.1} s",
                    done.to.to_rfc3339(),
                    done.subdomain,
                    done.rows,
                    done.took.as_secs_f64()
                ),
            }
        }
        TenantCommand::Export {
            subdomain,
            output,
            with_credentials,
        } => {
            let done = services
                .export_tenant(
                    &Subdomain::parse(&subdomain)?,
                    &output,
                    with_credentials,
                    "platform",
                )
                .await?;
            println!(
                "exported {subdomain} to {}: {} rows in {} tables, {} bytes, {:.1} s{}",
                output.display(),
                done.rows(),
                done.manifest.tables.len(),
                done.bytes,
                done.took.as_secs_f64(),
                if with_credentials {
                    " (with credentials: keep it secret)"
                } else {
                    ""
                }
            );
        }
        TenantCommand::Import {
            archive,
            subdomain,
            server,
        } => {
            let done = services
                .import_tenant(&archive, &Subdomain::parse(&subdomain)?, server.as_deref())
                .await?;
            let migrated = done
                .migrated_from
                .map(|s| format!(", migrated up from {s}"))
                .unwrap_or_default();
            println!(
                "imported {} on {}: {} rows in {} tables, {:.1} s{migrated}",
                done.subdomain,
                done.server,
                done.rows,
                done.tables,
                done.took.as_secs_f64()
            );
        }
        TenantCommand::Delete {
            subdomain,
            yes,
            now,
            receipt,
        } => {
            if !yes {
                return Err(format!(
                    "deleting '{subdomain}' purges its data for good once it is done: add --yes"
                )
                .into());
            }
            let when = if now { Deletion::Now } else { Deletion::Grace };
            match services
                .schedule_deletion(&Subdomain::parse(&subdomain)?, when)
                .await?
            {
                Deleted::Scheduled {
                    purge_after,
                    export,
                } => {
                    println!(
                        "{subdomain} is closed and will be purged at {}; until then `tenant undelete {subdomain}` brings it back",
                        purge_after.to_rfc3339()
                    );
                    // The export for its admins runs in this process: it
                    // ends before the command does.
                    if let Some(id) = export {
                        loop {
                            let row = services.export_row(id).await?;
                            match row.map(|r| r.status) {
                                Some(ExportStatus::Running) => {
                                    tokio::time::sleep(std::time::Duration::from_millis(200)).await
                                }
                                Some(ExportStatus::Ready) => {
                                    println!("its admins were mailed a link to its data");
                                    break;
                                }
                                _ => {
                                    eprintln!("the export for its admins failed (see the log); `tenant export` can make one");
                                    break;
                                }
                            }
                        }
                        // The mail queue delivers off the command's path.
                        services
                            .mailer
                            .flush(std::time::Duration::from_secs(60))
                            .await;
                    }
                }
                Deleted::Purged(signed) => {
                    let text = serde_json::to_string_pretty(&*signed)?;
                    if let Some(path) = receipt {
                        std::fs::write(&path, &text)?;
                        println!("purged {subdomain}; its receipt is in {}", path.display());
                    } else {
                        println!("{text}");
                    }
                }
            }
        }
        TenantCommand::Undelete { subdomain } => {
            let t = services.undelete(&Subdomain::parse(&subdomain)?).await?;
            println!("{} is back, as it was", t.subdomain);
        }
        TenantCommand::Rename { subdomain, to } => {
            let r = services
                .rename_company(
                    &Subdomain::parse(&subdomain)?,
                    &Subdomain::parse(&to)?,
                    "platform (command line)",
                )
                .await?;
            println!(
                "{} is now {}: {} redirects there until {}, and is reserved until {}",
                r.old,
                r.new,
                tenant_url(&settings, &r.old),
                r.redirect_until.to_rfc3339(),
                r.reserved_until.to_rfc3339()
            );
        }
        TenantCommand::Domain(cmd) => domain(&services, cmd).await?,
        TenantCommand::Show { subdomain } => {
            let sub = Subdomain::parse(&subdomain)?;
            let t = directory::find_by_subdomain(&services.registry, &sub)
                .await?
                .ok_or_else(|| format!("no company has the subdomain '{sub}'"))?;
            println!("{}", serde_json::to_string_pretty(&TenantInfo::from(&t))?);
        }
    }
    Ok(())
}

async fn domain(services: &app::ssr::services::Services, cmd: DomainCommand) -> CliResult {
    use app::ssr::tenancy::domains::{names, Check};
    let (DomainCommand::Add { subdomain, .. }
    | DomainCommand::List { subdomain, .. }
    | DomainCommand::Verify { subdomain, .. }
    | DomainCommand::Remove { subdomain, .. }
    | DomainCommand::Primary { subdomain, .. }) = &cmd;
    let sub = Subdomain::parse(subdomain)?;
    let t = directory::find_by_subdomain(&services.registry, &sub)
        .await?
        .ok_or_else(|| format!("no company has the subdomain '{sub}'"))?;
    match cmd {
        DomainCommand::Add { domain, .. } => {
            let d = services.add_domain(t.id, &domain).await?;
            let target = &services.domains.target;
            println!(
                "added {} (not served until verified); create these DNS records:",
                d.domain
            );
            if names::is_apex(&d.domain) {
                println!("  {:<40} A/AAAA  the addresses of {target}", d.domain);
            } else {
                println!("  {:<40} CNAME   {target}.", d.domain);
            }
            println!(
                "  {:<40} TXT     \"{}\"",
                names::challenge_name(&d.domain),
                d.token
            );
            println!(
                "then: server tenant domain verify {} {}",
                t.subdomain, d.domain
            );
        }
        DomainCommand::List { json, .. } => {
            let domains = services.domains_of(t.id).await?;
            let rows: Vec<_> = domains.iter().map(|d| services.domain_row(d)).collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for r in rows {
                    println!(
                        "{:<40} {:<10} {}{}",
                        r.domain,
                        r.state,
                        if r.primary { "primary" } else { "" },
                        if r.redirect {
                            ", subdomain redirects"
                        } else {
                            ""
                        }
                    );
                }
            }
        }
        DomainCommand::Verify { domain, .. } => {
            match services.verify_domain(t.id, &domain).await? {
                Check::Verified => println!("{domain} is verified and served"),
                Check::Pending { found } => {
                    return Err(format!(
                        "{domain} is not verified: {} holds {}",
                        names::challenge_name(&domain),
                        if found.is_empty() {
                            "no TXT record".to_owned()
                        } else {
                            format!("{found:?}, not the token")
                        }
                    )
                    .into())
                }
                Check::Missing { until } => println!(
                    "{domain}'s TXT record is missing: still served until {}",
                    until.to_rfc3339()
                ),
                Check::Lapsed => {
                    return Err(format!("{domain}'s TXT record is gone: no longer served").into())
                }
            }
        }
        DomainCommand::Remove { domain, .. } => {
            services.remove_domain(t.id, &domain).await?;
            println!("{domain} removed");
        }
        DomainCommand::Primary {
            domain, redirect, ..
        } => {
            services
                .set_primary_domain(t.id, domain.as_deref(), redirect)
                .await?;
            match domain {
                Some(d) => println!("{d} is {}'s primary address", t.subdomain),
                None => println!("{}'s subdomain is its primary address", t.subdomain),
            }
        }
    }
    Ok(())
}

/// Exit code 0 when every tenant is current, 1 when any failed, the run
/// stopped, or the migration could not run at all.
async fn migrate(settings: Settings, args: MigrateArgs) -> CliResult {
    use app::ssr::tenancy::schema::migrate::{
        migrate_tenants, plan, Guards, MigrateOptions, Outcome,
    };
    use app::ssr::tenancy::schema::waves::WaveOptions;
    use indicatif::{ProgressBar, ProgressStyle};
    use migration::TenantMigrator;

    // Every flag is checked before anything is touched.
    let only = args.tenant.as_deref().map(Subdomain::parse).transpose()?;
    let budget = settings.connection_budget.unwrap_or(64) as usize;
    let in_waves = args.canary.is_some() || args.growth.is_some() || args.abort_rate.is_some();
    let labelled = settings
        .migration_canaries
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Subdomain::parse(s).map_err(|e| format!("ENCLAVE_MIGRATION_CANARIES: '{s}': {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let opts = MigrateOptions {
        concurrency: args.parallel.unwrap_or(8).clamp(1, budget),
        only,
        dry_run: args.dry_run,
        waves: in_waves.then(|| WaveOptions {
            canary: args.canary.clone().unwrap_or(Canary::Smallest(1)),
            growth: args.growth.unwrap_or(2.0),
            labelled,
            abort_rate: args.abort_rate.unwrap_or(0.0),
        }),
        resume: args.resume,
        guards: Guards {
            lock_timeout: std::time::Duration::from_millis(settings.migration_lock_timeout_ms),
            statement_timeout: std::time::Duration::from_millis(
                settings.migration_statement_timeout_ms,
            ),
        },
    };
    let services = build_services(&settings).await?; // migrates the registry first
    println!("registry: up to date");
    if args.plan {
        let plan = plan::<TenantMigrator>(&services, &opts).await?;
        for (k, wave) in plan.waves.iter().enumerate() {
            println!(
                "wave {} of {} ({} compan{}):",
                k + 1,
                plan.waves.len(),
                wave.len(),
                if wave.len() == 1 { "y" } else { "ies" }
            );
            for (sub, pending) in wave {
                println!("  {sub}: {}", pending.join(", "));
            }
        }
        println!(
            "{} compan{} already current; nothing changed",
            plan.current,
            if plan.current == 1 { "y" } else { "ies" }
        );
        return Ok(());
    }
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} tenants {elapsed_precise} {msg}")
                .expect("valid template"),
        );
        Some(bar)
    } else {
        None
    };
    let summary = migrate_tenants::<TenantMigrator>(
        &services,
        &opts,
        |n| {
            if let Some(bar) = &bar {
                bar.set_length(n as u64);
            } else {
                eprintln!("migrating {n} tenants, {} at a time", opts.concurrency);
            }
        },
        |r| {
            let line = match &r.outcome {
                Outcome::Migrated(applied) => format!(
                    "{}: migrated ({}) in {} ms",
                    r.subdomain,
                    applied.join(", "),
                    r.elapsed.as_millis()
                ),
                Outcome::Current => format!("{}: current", r.subdomain),
                Outcome::Pending(pending) => {
                    format!("{}: pending {}", r.subdomain, pending.join(", "))
                }
                Outcome::Failed(e) => format!(
                    "{}: FAILED: {}",
                    r.subdomain,
                    app::ssr::http::error_chain(&**e)
                ),
            };
            match &bar {
                Some(bar) => {
                    if matches!(r.outcome, Outcome::Failed(_) | Outcome::Pending(_)) {
                        bar.println(line);
                    }
                    bar.inc(1);
                }
                None => eprintln!("{line}"),
            }
        },
    )
    .await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let failed: Vec<_> = summary.failed().collect();
    println!(
        "{} migrated, {} already current, {} pending, {} failed in {:.1} s",
        summary.migrated(),
        summary.current(),
        summary.pending(),
        failed.len(),
        summary.elapsed.as_secs_f64()
    );
    for (sub, e) in &failed {
        println!("  {sub}: {e}");
    }
    if let Some(reason) = &summary.stopped {
        println!("stopped after {reason}");
        println!("fix what failed, then: server migrate --resume");
        return Err(MigrateStopped.into());
    }
    // New companies are copied from a template at the latest migration:
    // build it now rather than on the next signup.
    if !args.dry_run && services.provisioner.server().prepare_template().await {
        println!("tenant template: up to date");
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(MigrateFailed(failed.len()).into())
    }
}

/// `migrate status`: the last run, the versions companies are on, and
/// which are behind or failed, and why.
async fn migrate_status(settings: Settings) -> CliResult {
    use app::ssr::tenancy::schema::{migrate::latest_tenant_schema, runs};

    let services = build_services(&settings).await?;
    let latest = latest_tenant_schema();
    let status = runs::status(&services.registry, &latest).await?;
    match &status.last_run {
        None => println!("last run: none recorded"),
        Some((run, companies)) => {
            println!(
                "last run: {} {}, started {}, wave {} of {}{}",
                run.id,
                run.state.to_value(),
                run.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
                run.wave,
                run.waves,
                run.canary
                    .as_ref()
                    .map(|c| format!(
                        " (canary {c}, growth {}, abort rate {}, parallel {})",
                        run.growth, run.abort_rate, run.parallel
                    ))
                    .unwrap_or_default()
            );
            if let Some(reason) = &run.stop_reason {
                println!("  stopped: {reason}");
            }
            let count = |o| companies.iter().filter(|c| c.outcome == o).count();
            use app::ssr::entities::migration_run_companies::CompanyOutcome as O;
            println!(
                "  {} migrated, {} current, {} failed, {} not reached",
                count(O::Migrated),
                count(O::Current),
                count(O::Failed),
                count(O::Pending)
            );
            for c in companies.iter().filter(|c| c.outcome == O::Failed) {
                println!(
                    "  {} (wave {}): FAILED{} at {}: {}",
                    c.subdomain,
                    c.wave,
                    c.sqlstate
                        .as_ref()
                        .map(|s| format!(" [{s}]"))
                        .unwrap_or_default(),
                    c.reached.as_deref().unwrap_or("(none)"),
                    c.error.as_deref().unwrap_or("")
                );
            }
        }
    }
    println!("versions (latest: {latest}):");
    for (version, n) in &status.versions {
        println!("  {version}: {n}");
    }
    println!("behind: {}", status.behind.len());
    for (sub, version) in &status.behind {
        println!("  {sub}: {version}");
    }
    println!("failed: {}", status.failed.len());
    for (sub, error) in &status.failed {
        println!("  {sub}: {error}");
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
#[error("the run stopped before its last wave")]
struct MigrateStopped;

#[derive(Debug, thiserror::Error)]
#[error("{0} tenant(s) failed to migrate")]
struct MigrateFailed(usize);

async fn superadmin(settings: Settings, cmd: SuperadminCommand) -> CliResult {
    use app::ssr::accounts::platform;

    // Validate (and read the password) before touching any database.
    let (email, password) = match &cmd {
        SuperadminCommand::Create {
            email,
            password_stdin,
        }
        | SuperadminCommand::Password {
            email,
            password_stdin,
        } => (
            Some(Email::parse(email)?),
            Some(Password::parse(&read_password(
                *password_stdin,
                "Password",
            )?)?),
        ),
        SuperadminCommand::Remove { email }
        | SuperadminCommand::Totp(TotpCommand::Enable { email } | TotpCommand::Disable { email }) => {
            (Some(Email::parse(email)?), None)
        }
        _ => (None, None),
    };
    let services = build_services(&settings).await?;
    let registry = &services.registry;
    match cmd {
        SuperadminCommand::Create { .. } => {
            let (email, password) = (email.expect("parsed"), password.expect("read"));
            let user = platform::create_superadmin(registry, &email, password).await?;
            println!("created platform admin {} ({})", user.email, user.id);
        }
        SuperadminCommand::Password { .. } => {
            let (email, password) = (email.expect("parsed"), password.expect("read"));
            platform::set_superadmin_password(registry, &email, password).await?;
            println!("password set for {email}; their sessions ended");
        }
        SuperadminCommand::Remove { .. } => {
            let email = email.expect("parsed");
            platform::remove_superadmin(registry, &email).await?;
            println!("removed platform admin {email}");
        }
        SuperadminCommand::Totp(TotpCommand::Enable { .. }) => {
            use secrecy::ExposeSecret;
            let email = email.expect("parsed");
            let enrolled = platform::totp::enable(registry, &services.cipher, &email).await?;
            println!("{}", enrolled.url.expose_secret());
            println!("secret: {}", enrolled.secret_base32.expose_secret());
            eprintln!(
                "Add it to an authenticator app now: it is shown only once. {email} now signs in with a code."
            );
        }
        SuperadminCommand::Totp(TotpCommand::Disable { .. }) => {
            let email = email.expect("parsed");
            platform::totp::disable(registry, &email).await?;
            println!("{email} signs in without a code");
        }
        SuperadminCommand::List => {
            for user in platform::list_superadmins(registry).await? {
                println!(
                    "{:<40} {} {}",
                    user.email,
                    user.id,
                    user.created_at.format("%Y-%m-%d %H:%M")
                );
            }
        }
        SuperadminCommand::Token(TokenCommand::Create {
            label,
            expires_in_days,
        }) => {
            let valid_for = expires_in_days.map(|d| chrono::TimeDelta::days(d.into()));
            let token = platform::create_api_token(registry, &label, valid_for).await?;
            println!("{token}");
            eprintln!(
                "Keep it safe: it is shown only now. Use it as `Authorization: Bearer <token>`."
            );
        }
        SuperadminCommand::Token(TokenCommand::List) => {
            let when = |t: Option<chrono::DateTime<chrono::Utc>>, none: &str| {
                t.map_or_else(
                    || none.to_owned(),
                    |t| t.format("%Y-%m-%d %H:%M").to_string(),
                )
            };
            println!(
                "{:<12}  {:<24} {:<16} {:<16} expires",
                "id", "label", "created", "last used"
            );
            for t in platform::list_api_tokens(registry).await? {
                println!(
                    "{:<12}  {:<24} {:<16} {:<16} {}",
                    t.id,
                    t.label,
                    t.created_at.format("%Y-%m-%d %H:%M"),
                    when(t.last_used_at, "never"),
                    when(t.expires_at, "never"),
                );
            }
        }
        SuperadminCommand::Token(TokenCommand::Revoke { id }) => {
            platform::revoke_api_token(registry, &id).await?;
            println!("revoked {id}");
        }
    }
    Ok(())
}

async fn rotate(settings: Settings) -> CliResult {
    let services = build_services(&settings).await?;
    let cipher = crate::startup::load_cipher(&settings)?;
    let mut done = directory::reseal_credentials(&services.registry, &cipher).await?;
    let totp = app::ssr::accounts::platform::totp::reseal(&services.registry, &cipher).await?;
    done.resealed += totp.resealed;
    done.current += totp.current;
    done.unreadable += totp.unreadable;
    let servers = app::ssr::tenancy::servers::fleet::reseal(&services.registry, &cipher).await?;
    done.resealed += servers.resealed;
    done.current += servers.current;
    done.unreadable += servers.unreadable;
    println!(
        "{} resealed, {} already under the current key, {} unreadable",
        done.resealed, done.current, done.unreadable
    );
    if done.unreadable > 0 {
        return Err("some credentials open with neither key: is ENCLAVE_SECRET_KEY_PREVIOUS the key they were sealed with?".into());
    }
    // Every credential is now sealed for its owner: unbound ones (`v1:`)
    // are refused by every process started from here on.
    app::ssr::secrets::refuse_legacy(&services.registry).await?;
    // "Find your workspace" digests are keyed too: made again under the new key.
    app::ssr::accounts::workspaces::rebuild_if_stale(&services).await?;
    Ok(())
}

/// Where company `sub` is served, as the listen port says (plain http:
/// behind a proxy the scheme and port are the proxy's).
fn tenant_url(s: &Settings, sub: &str) -> String {
    let base = match s.listen.port() {
        80 => s.base_domain.clone(),
        p => format!("{}:{p}", s.base_domain),
    };
    Origin {
        scheme: "http".into(),
        base,
    }
    .tenant_url(sub)
}

fn read_password(from_stdin: bool, prompt: &str) -> Result<String, Box<dyn std::error::Error>> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    if !std::io::stdin().is_terminal() {
        return Err(
            "no terminal to prompt for the password: pass --admin-password-stdin or --password-stdin".into(),
        );
    }
    let first = rpassword::prompt_password(format!("{prompt}: "))?;
    let again = rpassword::prompt_password("Again: ")?;
    if first != again {
        return Err("the passwords differ".into());
    }
    Ok(first)
}

/// `receipt verify <file>`.
async fn verify_receipt(settings: Settings, file: &std::path::Path) -> CliResult {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let services = build_services(&settings).await?;
    let r = app::ssr::tenancy::lifecycle::receipt::verify(&services.cipher, &text)?;
    println!(
        "valid: {} ({}) was purged at {}, signed by this installation",
        r.company.subdomain,
        r.company.id,
        r.purged_at.to_rfc3339()
    );
    Ok(())
}
